"""Builder (a): cross C compilers from the ``ziglang`` wheel, with a pre-filled cache so the box never rebuilds libc.

The wheel (fetched on the connected build host with ``pip download ziglang --no-deps``) is unpacked into
``zig/`` (with ``--from-package``, an installed ``ziglang`` package directory is copied there instead: development
machines get it from ``pip install -e .[dev]``). Each target's C library, compiler_rt and start files are built once
here by compiling a small program through the tree's own ``cc`` wrapper, and the resulting global cache is shipped as
``cache/``.

Why the wrapper names zig's library directory ``/proc/self/fd/9``: zig keys the cached libc by the *path* of its
library directory, so a cache warmed in ``/build/prefix`` would never be used by a tree extracted to
``/var/lib/sigforge/toolchains/...``. The wrapper opens ``zig/lib`` as descriptor 9 and passes that path, which is the
same string on every host. (Zig also compares each input's inode and mtime; after extraction they differ, so the first
build re-hashes the library sources once — seconds, not the minute a libc rebuild takes — and records the new
stamps in the writable cache.)

Zig needs a *writable* global cache, so the wrapper copies ``cache/`` into a per-node directory on first use: the
toolchain's state directory from the registry (``$SIGFORGE_TOOLCHAIN_STATE/zig-cache``), else
``$SIGFORGE_ZIG_CACHE``, else one directory per tree under ``$TMPDIR``. The signed copy in the tree is never written,
so the registry's checks keep holding.
"""

from __future__ import annotations

import os
import stat
import subprocess
import tempfile
import zipfile
from pathlib import Path

from prefix import copy_into, normalise_modes

# sigforge target name -> zig target triple (and CPU flags). Cortex-M4F needs +vfp4d16sp for hard float (probe).
TARGETS = {
    "linux-arm64": ("aarch64-linux-musl", ()),
    "linux-armhf": ("arm-linux-musleabihf", ()),
    "linux-riscv64": ("riscv64-linux-musl", ()),
    "cortex-m4": ("thumb-freestanding-eabihf", ("-mcpu=cortex_m4+vfp4d16sp",)),
}
WARM_SOURCE = "#include <math.h>\nfloat f(float x) { return sqrtf(x) * 0.5f; }\n"
WARM_MAIN = '#include <stdio.h>\nfloat f(float);\nint main(void) { printf("%f\\n", f(2.0f)); return 0; }\n'

CC_WRAPPER = """#!/bin/sh
# zig {tool} (from the ziglang wheel), relocatable. Zig needs a writable global cache: the signed, pre-filled cache/
# of this tree is copied once into a per-node directory and never written in place, so the tree keeps matching its
# manifest. Zig keys its cached libc by the path of its library directory: the directory is passed as
# /proc/self/fd/9, the same path on every host, so the cache built on the build host is used here.
case "$0" in */*) here=${0%/*} ;; *) here=. ;; esac
root=$(CDPATH= cd -- "$here/.." && pwd -P) || exit 127
if [ "$#" -eq 1 ] && [ "$1" = --version ]; then
    # A version query needs no pre-built library: a throwaway cache, so the registry's probe copies nothing.
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/sigforge-zig-version.XXXXXX") || exit 126
    ZIG_GLOBAL_CACHE_DIR="$tmp" ZIG_LOCAL_CACHE_DIR="$tmp" "$root/zig/zig" {tool} --version
    status=$?
    rm -rf "$tmp"
    exit $status
fi
if [ -n "${SIGFORGE_ZIG_CACHE:-}" ]; then
    cache=$SIGFORGE_ZIG_CACHE
elif [ -n "${SIGFORGE_TOOLCHAIN_STATE:-}" ]; then
    cache=$SIGFORGE_TOOLCHAIN_STATE/zig-cache
else
    cache=${TMPDIR:-/tmp}/sigforge-zig-cache-$(printf %s "$root" | cksum | cut -d" " -f1)
fi
if [ ! -d "$cache" ]; then
    tmp="$cache.tmp.$$"
    mkdir -p "$tmp" && cp -R "$root/cache/." "$tmp/" || { rm -rf "$tmp"; exit 126; }
    mv -T "$tmp" "$cache" 2>/dev/null || rm -rf "$tmp"  # lost a race: the other process's copy is the same
fi
exec 9<"$root/zig/lib" || exit 126
ZIG_LIB_DIR=/proc/self/fd/9 ZIG_GLOBAL_CACHE_DIR="$cache" ZIG_LOCAL_CACHE_DIR="$cache" exec "$root/zig/zig" {tool} "$@"
"""


def _skipped(rel: str) -> bool:
    """Left out: the wheel's Python shims and byte-code (the tree runs ``zig`` directly), and the standard library's
    ``testdata`` fixtures (never compiled by ``zig cc``; they include ASN.1 ``.der`` keys, which a bundle may not hold).
    """
    parts = rel.split("/")
    return rel in ("__init__.py", "__main__.py") or "__pycache__" in parts or "testdata" in parts


def _zig_version(prefix: Path) -> str:
    zig = prefix / "zig" / "zig"
    zig.chmod(zig.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return subprocess.run([str(zig), "version"], check=True, capture_output=True, text=True).stdout.strip()


def copy_package(package: Path, prefix: Path) -> str:
    """Copy an installed ``ziglang`` package directory into ``prefix/zig``; returns zig's version."""
    if not (package / "zig").is_file():
        raise SystemExit(f"zig.py: {package} is not a ziglang package directory (no zig binary in it)")
    sources = [p for p in sorted(package.rglob("*")) if not _skipped(p.relative_to(package).as_posix())]
    copy_into(prefix / "zig", sources, strip=package)
    return _zig_version(prefix)


def installed_package() -> Path:
    """The ``ziglang`` package directory of the running interpreter (``pip install ziglang``)."""
    import importlib.util

    spec = importlib.util.find_spec("ziglang")
    if spec is None or spec.origin is None:
        raise SystemExit("zig.py: no ziglang package is installed here (pip install ziglang, or pass --wheel)")
    return Path(spec.origin).parent


def unpack_wheel(wheel: Path, prefix: Path) -> str:
    """Unpack the wheel's ``ziglang/`` package into ``prefix/zig`` with the zip's modes; returns zig's version."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if not info.filename.startswith("ziglang/") or info.is_dir():
                continue
            rel = info.filename.removeprefix("ziglang/")
            if _skipped(rel):
                continue
            dest = prefix / "zig" / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, dest.open("wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
            mode = (info.external_attr >> 16) & 0o777
            dest.chmod(0o755 if mode & 0o111 else 0o644)
    return _zig_version(prefix)


def warm_cache(prefix: Path, targets: list[str]) -> None:
    """Build each target's libc/compiler_rt once, into ``prefix/cache`` (takes 30-90 s per target on 2 cores).

    Compiles through the tree's own ``bin/cc`` (written first), so the cache is keyed exactly as it will be on the box.
    """
    cache = prefix / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SIGFORGE_ZIG_CACHE": str(cache)}
    env.pop("SIGFORGE_TOOLCHAIN_STATE", None)
    cc = str(prefix / "bin" / "cc")
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "f.c").write_text(WARM_SOURCE)
        (Path(tmp) / "main.c").write_text(WARM_MAIN)
        for name in targets:
            triple, flags = TARGETS[name]
            out = str(Path(tmp) / f"out-{name}")
            if "freestanding" in triple:  # bare metal: compile and archive; the harness brings its own startup
                argv = [cc, "-target", triple, *flags, "-O2", "-c", "f.c", "-o", f"{out}.o"]
            else:
                argv = [cc, "-target", triple, *flags, "-O2", "-static", "main.c", "f.c", "-lm", "-o", out]
            subprocess.run(argv, check=True, cwd=tmp, env=env)
    # Per-build state that must not ship: the local cache's temporary objects and zig's lock/timestamp files.
    for junk in ("tmp", "h/timestamp"):
        path = cache / junk
        if path.is_dir():
            for child in sorted(path.rglob("*"), reverse=True):
                child.rmdir() if child.is_dir() else child.unlink()
            path.rmdir()
        elif path.exists():
            path.unlink()


def write_wrappers(prefix: Path) -> None:
    """``bin/cc`` and ``bin/ar``: the relocatable wrappers around ``zig cc`` and ``zig ar``."""
    (prefix / "bin").mkdir(parents=True, exist_ok=True)
    for name in ("cc", "ar"):
        wrapper = prefix / "bin" / name
        wrapper.write_text(CC_WRAPPER.replace("{tool}", name))
        wrapper.chmod(0o755)


def tool_version(prefix: Path, tool: str) -> str:
    """The version line the wrapper reports on this build host (the registry checks the box reports the same)."""
    text = subprocess.run([str(prefix / "bin" / tool), "--version"], check=True, capture_output=True,
                          text=True).stdout  # fmt: skip
    return next(line.strip() for line in text.splitlines() if "version" in line)


def assemble(
    prefix: Path, source: Path, targets: list[str]
) -> tuple[dict[str, tuple[str, str, tuple[str, ...]]], str, list[str]]:
    """Fill ``prefix`` from ``source`` (a ziglang wheel, or an installed ``ziglang`` package directory) and warm the
    cache for ``targets``.

    Returns:
        Entry points (role -> (path, version, version arguments)), the zig version, and the targets provided.
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown:
        raise SystemExit(f"zig.py: unknown target(s) {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    version = copy_package(source, prefix) if source.is_dir() else unpack_wheel(source, prefix)
    write_wrappers(prefix)
    warm_cache(prefix, targets)
    normalise_modes(prefix)
    entry_points = {role: (f"bin/{role}", tool_version(prefix, role), ("--version",)) for role in ("cc", "ar")}
    return entry_points, version, targets
