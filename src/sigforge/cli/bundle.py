"""``sigforge bundle build|verify|inspect``.

- ``build`` (build host): sign a directory into one bundle file; deterministic for the same inputs and ``--created``.
- ``verify`` (box): copy the file to a private local temp file, run every check against the installed trust root
  and persisted state, print the result; writes nothing to the trust directory. Exit 1 with the reason if rejected.
- ``inspect``: print the manifest of a bundle **without verifying it** (says so).
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from sigforge.bundles import PRODUCT
from sigforge.bundles.archive import open_bundle
from sigforge.bundles.build import build_bundle
from sigforge.bundles.keys import load_signing_key
from sigforge.bundles.manifest import KINDS, Manifest, Provides, decode_manifest
from sigforge.bundles.store import load_trust
from sigforge.bundles.verify import decode_signatures, local_copy, verify_bundle
from sigforge.bundles.version import Version
from sigforge.cli.keys import parse_time
from sigforge.errors import InvalidInput
from sigforge.settings import Settings

EXIT_OK = 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bundle = sub.add_parser("bundle", help="signed bundles: build, verify, inspect")
    bs = bundle.add_subparsers(dest="bundle_command", required=True, metavar="ACTION")
    build = bs.add_parser("build", help="sign a directory into a bundle (on the build host)")
    build.add_argument("--kind", required=True, choices=KINDS)
    build.add_argument("--name", required=True)
    build.add_argument("--version", required=True, metavar="X.Y.Z")
    build.add_argument("--product", default=PRODUCT)
    build.add_argument("--arch", required=True, help="host architecture (platform.machine()) or 'any'")
    build.add_argument("--expires", required=True, metavar="DATE")
    build.add_argument("--created", metavar="DATE", help="default: now (fix it for reproducible builds)")
    build.add_argument("--min-installed-version", metavar="X.Y.Z")
    build.add_argument(
        "--provides", metavar="FILE", help="JSON: {targets: [...], entry_points: {role: {path, version}}}"
    )
    build.add_argument("--key", action="append", required=True, metavar="KEYFILE", help="private key (repeat)")
    build.add_argument("--from", dest="source", required=True, metavar="DIR")
    build.add_argument("--out", required=True, metavar="FILE")
    build.add_argument("--compression", choices=("zstd", "gzip"), default="zstd")
    verify = bs.add_parser("verify", help="verify a bundle against this box's trust root")
    verify.add_argument("file", metavar="FILE")
    verify.add_argument("--trust", metavar="DIR", help="trust directory (default: bundles.trust_dir)")
    verify.add_argument("--kind", choices=KINDS, help="require this kind")
    verify.add_argument("--product", default=PRODUCT)
    verify.add_argument("--arch", default=platform.machine(), help="default: this machine")
    verify.add_argument("--installed-version", metavar="X.Y.Z", help="the version installed now (anti-rollback)")
    inspect = bs.add_parser("inspect", help="print a bundle's manifest WITHOUT verifying it")
    inspect.add_argument("file", metavar="FILE")


def _provides(path: str | None) -> Provides | None:
    if path is None:
        return None
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=Provides, strict=True)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise InvalidInput(f"{path}: not a valid provides section: {exc}") from None


def _summary(m: Manifest) -> list[str]:
    lines = [
        f"{m.kind} {m.name} {m.version} for {m.product} on {m.host_arch}",
        f"  created {m.created.isoformat()}, expires {m.expires.isoformat()}",
        f"  {len(m.files)} files, {len(m.symlinks)} links, {m.total_size} bytes",
    ]
    if m.min_installed_version:
        lines.append(f"  needs {m.min_installed_version} or later installed")
    if m.provides is not None:
        lines.append(f"  targets: {', '.join(m.provides.targets)}")
        lines.extend(f"  {role}: {ep.path} ({ep.version})" for role, ep in sorted(m.provides.entry_points.items()))
    return lines


def run_bundle(args: argparse.Namespace, settings: Settings) -> int:
    action = args.bundle_command
    if action == "build":
        Version.parse(args.version)
        manifest = build_bundle(
            source=Path(args.source),
            out=Path(args.out),
            kind=args.kind,
            name=args.name,
            version=args.version,
            product=args.product,
            host_arch=args.arch,
            created=parse_time(args.created) if args.created else datetime.now(UTC),
            expires=parse_time(args.expires),
            keys=[load_signing_key(Path(k)) for k in args.key],
            compression=args.compression,
            min_installed_version=args.min_installed_version,
            provides=_provides(args.provides),
        )
        print("\n".join([f"built {args.out}", *_summary(manifest)]))
        return EXIT_OK
    workdir = Path(tempfile.gettempdir())
    if action == "inspect":
        with local_copy(Path(args.file), settings.bundles, workdir) as copy, open_bundle(copy, settings.bundles) as r:
            manifest_bytes, signature_bytes = r.read_header()
            manifest = decode_manifest(manifest_bytes, validate=False)
            keyids = [s.keyid[:16] for s in decode_signatures(signature_bytes).signatures]
        print("\n".join(["NOT VERIFIED (inspect only reads; use `sigforge bundle verify`)", *_summary(manifest)]))
        print(f"  signatures by: {', '.join(keyids) or '(none)'}")
        return EXIT_OK
    trust_dir = Path(args.trust) if args.trust else settings.trust_path
    root, state = load_trust(trust_dir)
    installed = Version.parse(args.installed_version) if args.installed_version else None
    with local_copy(Path(args.file), settings.bundles, workdir) as copy:
        verified = verify_bundle(
            copy,
            trust_root=root,
            state=state,
            now=datetime.now(UTC),
            expected_product=args.product,
            host_arch=args.arch,
            installed_version=installed,
            limits=settings.bundles,
            expected_kind=args.kind,
        )
    signers = ", ".join(k[:16] for k in sorted(verified.signed_by))
    print("\n".join([f"VERIFIED {args.file}", *_summary(verified.manifest)]))
    print(f"  signed by {verified.role} keys: {signers}")
    return EXIT_OK
