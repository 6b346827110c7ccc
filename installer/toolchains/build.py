"""Build a signed toolchain bundle on the connected build host.

Usage::

    python installer/toolchains/build.py host-gcc --key toolchain.key --out DIR
    python installer/toolchains/build.py zig --wheel ziglang-0.17.1-....whl [--targets linux-arm64,cortex-m4] \\
        --key toolchain.key --out DIR
    python installer/toolchains/build.py zig --from-package [DIR] ...   # an installed ziglang package instead
    python installer/toolchains/build.py debian --debs DIR --name arm-none-eabi --key toolchain.key --out DIR

Each builder assembles a relocatable prefix in a temporary directory, then ``sigforge.bundles.build_bundle`` signs it
with the given toolchain-role key(s). Prints the bundle's path. Exit status 0 on success, 2 on bad arguments.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sigforge.bundles import PRODUCT, EntryPoint, Provides
from sigforge.bundles.build import build_bundle
from sigforge.bundles.keys import load_signing_key
from sigforge.errors import DomainError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="builder", required=True)
    sub.add_parser("host-gcc", help="the build host's own gcc + binutils + C library (target host-c)")
    zig = sub.add_parser("zig", help="cross C for Linux arm64/armhf/riscv64 and Cortex-M4 from the ziglang wheel")
    source = zig.add_mutually_exclusive_group(required=True)
    source.add_argument("--wheel", type=Path, help="the ziglang wheel (pip download ziglang --no-deps)")
    source.add_argument("--from-package", nargs="?", type=Path, const=True, metavar="DIR",
                        help="an installed ziglang package directory instead of a wheel (default: the one this "
                        "Python imports)")  # fmt: skip
    zig.add_argument("--targets", default="linux-arm64,linux-armhf,linux-riscv64,cortex-m4",
                     help="targets whose libc/compiler_rt to pre-build into the cache (comma-separated)")  # fmt: skip
    deb = sub.add_parser("debian", help="tools unpacked from Debian packages into a relocatable prefix")
    deb.add_argument("--debs", type=Path, required=True, help="a directory of .deb files (apt-get download ...)")
    deb.add_argument("--name", required=True, choices=["arm-none-eabi", "qemu", "hdl", "yosys"])
    for p in sub.choices.values():
        p.add_argument("--key", type=Path, action="append", required=True, help="toolchain-role signing key (PEM)")
        p.add_argument("--out", type=Path, required=True, help="directory for the bundle")
        p.add_argument("--version", help="bundle version (default: the tool's own MAJOR.MINOR.PATCH)")
        p.add_argument("--expires-days", type=int, default=365)
        p.add_argument("--compression", choices=["zstd", "gzip"], default="zstd")
        p.add_argument("--zstd-level", type=int, default=12, help="1-19: 12 for media, 3 for quick development builds")
        p.add_argument("--work", type=Path, help="where to assemble the prefix (default: a temporary directory)")
    return parser


EntryPoints = dict[str, tuple[str, str, tuple[str, ...]]]


def _assemble(args: argparse.Namespace, prefix: Path) -> tuple[str, EntryPoints, str, list[str]]:
    if args.builder == "host-gcc":
        import host_gcc

        entry_points, version, targets = host_gcc.assemble(prefix)
        return "host-gcc", entry_points, version, targets
    if args.builder == "zig":
        import zig

        source = args.wheel or (zig.installed_package() if args.from_package is True else args.from_package)
        entry_points, version, targets = zig.assemble(prefix, source, args.targets.split(","))
        return "zig", entry_points, version, targets
    import debian

    entry_points, version, targets = debian.assemble(prefix, args.debs, args.name)
    return args.name, entry_points, version, targets


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        keys = [load_signing_key(path) for path in args.key]
        with tempfile.TemporaryDirectory(prefix="sigforge-toolchain-", dir=args.work) as tmp:
            prefix = Path(tmp) / "prefix"
            prefix.mkdir()
            name, entry_points, tool_version, targets = _assemble(args, prefix)
            version = args.version or ".".join([*tool_version.split("-")[0].split("."), "0", "0"][:3])
            provides = Provides(
                targets=tuple(targets),
                entry_points={
                    role: EntryPoint(path=path, version=v, version_args=args)
                    for role, (path, v, args) in entry_points.items()
                },
            )
            now = datetime.now(UTC)
            out = args.out / f"{name}-{version}-{platform.machine()}.bundle"
            build_bundle(
                source=prefix, out=out, kind="toolchain", name=name, version=version, product=PRODUCT,
                host_arch=platform.machine(), created=now, expires=now + timedelta(days=args.expires_days),
                keys=keys, compression=args.compression, zstd_level=args.zstd_level, provides=provides,
            )  # fmt: skip
    except DomainError as exc:
        print(f"build.py: {exc}", file=sys.stderr)
        return 2
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
