"""``sigforge media write|unpack``: install media (see docs/install.md).

- ``write DIR --from MEDIA_DIR [--part-size 4G]`` (build host): copy a media directory built by
  ``installer/build_media.py`` onto a stick's mount point, checking every byte against its ``SHA256SUMS``; with a part
  size the bundle is split into ``*.partNN`` files, each listed in the new ``SHA256SUMS``.
- ``unpack BUNDLE --to DIR [--trust DIR]`` (box, run by ``install.sh``): copy the ``media`` bundle to a private local
  file, verify it against the trust root in ``--trust`` (release-role signatures, expiry, product, architecture,
  every byte) and unpack it into the new directory ``DIR`` (every byte checked again while it is written). Exit 1
  with the reason if it is rejected; nothing is left at ``DIR`` then.
"""

from __future__ import annotations

import argparse
import platform
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sigforge.bundles import PRODUCT
from sigforge.bundles.media import parse_size, write_media
from sigforge.bundles.state import STATE_FILE, record_accepted
from sigforge.bundles.store import load_trust
from sigforge.bundles.verify import extract_verified, local_copy, verify_bundle
from sigforge.errors import InvalidInput
from sigforge.settings import Settings

EXIT_OK = 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    media = sub.add_parser("media", help="install media: write to a stick, unpack on the box")
    ms = media.add_subparsers(dest="media_command", required=True, metavar="ACTION")
    write = ms.add_parser("write", help="lay out a built media directory on DIR (a stick), optionally in parts")
    write.add_argument("dest", type=Path, metavar="DIR")
    write.add_argument("--from", dest="source", type=Path, required=True, metavar="MEDIA_DIR",
                       help="the directory installer/build_media.py wrote")  # fmt: skip
    write.add_argument("--part-size", metavar="SIZE", help="split the bundle into parts of at most SIZE (4G, 700M)")
    unpack = ms.add_parser("unpack", help="verify a media bundle and unpack it into a new directory")
    unpack.add_argument("bundle", type=Path, metavar="BUNDLE")
    unpack.add_argument("--to", dest="dest", type=Path, required=True, metavar="DIR", help="must not exist")
    unpack.add_argument("--trust", type=Path, metavar="DIR", help="trust directory (default: bundles.trust_dir)")
    unpack.add_argument("--arch", default=platform.machine(), help="default: this machine")


def run_media(args: argparse.Namespace, settings: Settings) -> int:
    if args.media_command == "write":
        if not args.source.is_dir():
            raise InvalidInput(f"{args.source} is not a directory")
        part_size = parse_size(args.part_size) if args.part_size else None
        written = write_media(args.source, args.dest, part_size)
        for name in sorted(written):
            print(f"{written[name]}  {args.dest / name}")
        print(f"wrote {len(written)} files to {args.dest} (checked against {args.source}/SHA256SUMS)")
        return EXIT_OK
    trust_dir = args.trust or settings.trust_path
    root, state = load_trust(trust_dir)
    with local_copy(args.bundle, settings.bundles, workdir=Path(tempfile.gettempdir())) as copy:
        verified = verify_bundle(
            copy, trust_root=root, state=state, now=datetime.now(UTC), expected_product=PRODUCT,
            host_arch=args.arch, installed_version=None, limits=settings.bundles, expected_kind="media",
        )  # fmt: skip
        extract_verified(verified, args.dest, settings.bundles)
    record_accepted(trust_dir / STATE_FILE, verified.manifest)
    m = verified.manifest
    print(
        f"VERIFIED {m.kind} {m.name} {m.version} ({len(m.files)} files, {m.total_size} bytes), unpacked to {args.dest}"
    )
    return EXIT_OK
