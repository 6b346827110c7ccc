"""``sigforge``: argument parsing and exit codes; each command lives in its own module.

Exit codes: 0 success (for ``translate``: verified), 1 failure (for ``translate``: verification failed; for
``bundle``/``keys``/``backup``/``update``: a bundle, trust root or backup was rejected, with its reason; for
``update``: also an update that failed and was rolled back; for ``user``: an unknown user or a clash with the
current state),
2 bad input or bad settings, 3 the environment is not ready (schema mismatch, unreachable service, toolchain),
70 an internal error (a bug; one line, and the traceback with ``SIGFORGE_LOG_LEVEL=debug``).
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

import sigforge
from sigforge.errors import BackupRejected, BundleRejected, DomainError, InvalidInput, InvalidSettings

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_NOT_READY, EXIT_INTERNAL = 0, 1, 2, 3, 70


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sigforge", description="Offline algorithm-to-silicon appliance.")
    parser.add_argument("--config", metavar="FILE", help="settings file (default: $SIGFORGE_CONFIG, ./sigforge.toml)")
    parser.add_argument("--version", action="version", version=f"sigforge {sigforge.__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="migrate, then run the web service and the worker pool together")
    serve = sub.add_parser("serve", help="run the web service")
    for p in (up, serve):
        p.add_argument("--host", help="listen address (default: server.host)")
        p.add_argument("--port", type=int, help="listen port (default: server.port)")
    worker = sub.add_parser("worker", help="run the worker pool")
    for p in (up, worker):
        p.add_argument("--processes", type=int, help="worker processes (default: broker.processes)")
        p.add_argument("--threads", type=int, help="threads per worker process (default: broker.threads)")
    # Set by `sigforge up` for its child: the pool stops (gracefully) if `up` itself dies, even by SIGKILL.
    worker.add_argument("--exit-with-parent", type=int, metavar="PID", help=argparse.SUPPRESS)

    translate = sub.add_parser("translate", help="translate, build and verify one algorithm, in-process")
    translate.add_argument("source", metavar="SOURCE", help="the algorithm's Python file")
    translate.add_argument("--target", default="host-c")
    translate.add_argument("--input-dtype", default="float32")
    translate.add_argument("--frame", type=int, required=True, metavar="N", help="input samples per frame")
    translate.add_argument("--entry", metavar="NAME", help="the function to translate (default: the only one)")
    translate.add_argument("--sample-rate", type=float, metavar="HZ")
    translate.add_argument("--out", required=True, metavar="DIR", help="where to write the artifact")
    translate.add_argument("--force", action="store_true", help="write into a non-empty DIR")

    db = sub.add_parser("db", help="database schema: upgrade, current, check")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    db_sub.add_parser("upgrade", help="migrate the database to this release's schema")
    db_sub.add_parser("current", help="print the database's schema revision and this code's head")
    db_sub.add_parser("check", help="fail if the models and the migrated schema differ (drift)")
    from sigforge.cli.queue import add_parser as add_queue_parser
    from sigforge.cli.toolchain import add_parser as add_toolchain_parser

    add_queue_parser(sub)
    add_toolchain_parser(sub)
    from sigforge.cli.bundle import add_parser as add_bundle_parser
    from sigforge.cli.keys import add_parser as add_keys_parser

    add_keys_parser(sub)
    add_bundle_parser(sub)
    from sigforge.cli.backup import add_parser as add_backup_parser

    add_backup_parser(sub)
    from sigforge.cli.update import add_parser as add_update_parser

    add_update_parser(sub)
    from sigforge.cli.media import add_parser as add_media_parser
    from sigforge.cli.service import add_parser as add_service_parser

    add_media_parser(sub)
    add_service_parser(sub)
    from sigforge.cli.user import add_parser as add_user_parser

    add_user_parser(sub)
    return parser


def _run(args: argparse.Namespace) -> int:  # noqa: PLR0911, PLR0912 - one branch and return per command
    from sigforge.settings import load_settings

    settings = load_settings(args.config)
    if args.command == "translate":
        from sigforge.cli.translate import run_translate

        return run_translate(args, settings)
    if args.command == "db":
        from sigforge.cli.db import run_db

        return run_db(args.db_command, settings)
    if args.command == "keys":
        from sigforge.cli.keys import run_keys

        return run_keys(args, settings)
    if args.command == "bundle":
        from sigforge.cli.bundle import run_bundle

        return run_bundle(args, settings)
    if args.command == "toolchain":
        from sigforge.cli.toolchain import run_toolchain

        return run_toolchain(args, settings)
    if args.command == "queue":
        from sigforge.cli.queue import run_queue

        return run_queue(args, settings)
    if args.command == "backup":
        from sigforge.cli.backup import run_backup

        return run_backup(args, settings)
    if args.command == "update":
        from sigforge.cli.update import run_update

        return run_update(args, settings)
    if args.command == "media":
        from sigforge.cli.media import run_media

        return run_media(args, settings)
    if args.command == "service":
        from sigforge.cli.service import run_service

        return run_service(args, settings)
    if args.command == "user":
        from sigforge.cli.user import run_user

        return run_user(args, settings)
    from sigforge.cli import serve

    if args.command == "serve":
        return serve.run_serve(settings, host=args.host, port=args.port)
    if args.command == "worker":
        return serve.run_worker_pool(
            settings, args.config, processes=args.processes, threads=args.threads, parent_pid=args.exit_with_parent
        )
    return serve.run_up(
        settings, args.config, host=args.host, port=args.port, processes=args.processes, threads=args.threads
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sigforge`` console script."""
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except (BundleRejected, BackupRejected) as exc:
        print(f"sigforge: rejected: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (InvalidInput, InvalidSettings) as exc:
        print(f"sigforge: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except DomainError as exc:
        print(f"sigforge: {exc}", file=sys.stderr)
        return EXIT_NOT_READY
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: say so in one line; the traceback is for whoever asks for it
        if os.environ.get("SIGFORGE_LOG_LEVEL", "").lower() == "debug":
            traceback.print_exc()
        print(
            f"sigforge: internal error: {type(exc).__name__}: {exc} (SIGFORGE_LOG_LEVEL=debug shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
