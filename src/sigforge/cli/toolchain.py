"""``sigforge toolchain import|list|show|verify|remove``: the toolchain registry of this node.

``import`` copies the bundle to local storage before verifying it (removable media may change under us), extracts
it, re-hashes the tree and asks each entry point its version; ``verify`` re-hashes every file (``--all`` for every
toolchain) and quarantines any that differs. Every action is an audit event. Exit codes: 0 ok, 1 a rejected bundle
or a verification that found a problem (the toolchain is quarantined), 2 bad input, 3 the box is not ready (no
trust root, schema mismatch, a new tree that failed its post-import check).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import msgspec

from sigforge.cli.db import open_database
from sigforge.db import migrate
from sigforge.errors import InvalidInput
from sigforge.logging import configure_logging
from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainRegistry, ToolchainView
from sigforge.settings import Settings
from sigforge.toolchains.runner import ProcessRunner

ACTOR = Actor("cli")


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    toolchain = sub.add_parser("toolchain", help="the toolchain registry: import, list, show, verify, remove")
    actions = toolchain.add_subparsers(dest="toolchain_command", required=True, metavar="ACTION")
    imp = actions.add_parser("import", help="import a signed toolchain bundle (copied to local storage first)")
    imp.add_argument("bundle", type=Path, metavar="BUNDLE")
    listing = actions.add_parser("list", help="toolchains of this node and their state")
    show = actions.add_parser("show", help="one toolchain: manifest, entry points, checks")
    show.add_argument("name")
    for p in (listing, show):
        p.add_argument("--json", action="store_true", help="machine-readable output")
    verify = actions.add_parser("verify", help="re-hash every file now (quarantines on any difference)")
    which = verify.add_mutually_exclusive_group(required=True)
    which.add_argument("name", nargs="?")
    which.add_argument("--all", action="store_true", help="every toolchain of this node")
    remove = actions.add_parser("remove", help="unregister a toolchain and delete its files")
    remove.add_argument("name")


def _row(view: ToolchainView) -> str:
    checked = view.last_full_check_at.isoformat(timespec="seconds") if view.last_full_check_at else "never"
    return f"{view.name:<18} {view.version:<10} {view.state:<12} {','.join(view.targets):<28} {checked}"


def _json(view: ToolchainView) -> dict[str, object]:
    return msgspec.to_builtins(view)  # type: ignore[no-any-return]


def run_toolchain(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("warning", "console")
    db = open_database(settings)
    try:
        migrate.ensure_at_head(db)
        registry = ToolchainRegistry(db, settings, ProcessRunner(network=settings.sandbox.network))
        command = args.toolchain_command
        if command == "import":
            if not args.bundle.is_file():
                raise InvalidInput(f"{args.bundle} is not a file")
            view = registry.import_bundle(args.bundle, ACTOR)
            print(f"imported {view.name} {view.version}: {view.file_count} files, targets {', '.join(view.targets)}")
            return 0
        if command == "list":
            views = registry.installed()
            if args.json:
                print(json.dumps([_json(v) for v in views], indent=2, default=str))
            else:
                print(f"{'name':<18} {'version':<10} {'state':<12} {'targets':<28} last full check")
                for view in views:
                    print(_row(view))
            return 0
        if command == "show":
            view = registry.show(args.name)
            print(json.dumps(_json(view), indent=2, default=str))
            return 0
        if command == "verify":
            results = registry.verify(None if args.all else args.name, ACTOR, full=True)
            for result in results:
                print(f"{result.name}: {'ok' if result.ok else 'FAILED (quarantined)'}")
                for problem in result.problems[:20]:
                    print(f"  {problem.path}: {problem.kind}: {problem.detail}")
            return 0 if all(r.ok for r in results) else 1
        registry.remove(args.name, ACTOR)
        print(f"removed {args.name}")
        return 0
    finally:
        db.dispose()
