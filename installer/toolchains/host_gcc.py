"""Builder (c): the build host's own gcc, binutils and C library as a relocatable ``host-c`` toolchain prefix.

Run on a Debian-family build host with gcc installed. Files come from the host's packages (``dpkg -L``), the
compiler's private shared libraries (isl, mpc, mpfr, gmp, bfd, ...) are found with ``ldd`` and shipped in
``lib/sigforge``; glibc itself is shipped for linking (``--sysroot``) but never put on the tools' library path, so the
tools always run on the box's own loader and C library. Programs built with it run on any box whose glibc is at least
the build host's.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from prefix import copy_into, normalise_modes, write_wrapper

# glibc's own libraries: the tools use the box's copies (a loader and a libc from two builds must never mix).
GLIBC = re.compile(r"^(ld-linux[-\w.]*|lib(c|m|dl|pthread|rt|util|resolv|mvec)\.so[.\d]*)$")
# Documentation, locales and tools a translation never uses (sanitiser runtimes, gold, lto-dump, gcov, gprofng).
SKIP = ("/usr/share/", "/gconv/", "/perl", "gprofng", "/bfd-plugins", "lto-dump", "gold", "san.", "san_", "gcov")


def _out(*argv: str) -> str:
    return subprocess.run(argv, check=True, capture_output=True, text=True).stdout.strip()


def _package_files(package: str) -> list[Path]:
    return [
        Path(line)
        for line in _out("dpkg", "-L", package).splitlines()
        if line.startswith("/") and not any(s in line for s in SKIP)
    ]


def _private_libs(binaries: list[Path]) -> set[Path]:
    libs: set[Path] = set()
    for binary in binaries:
        for line in _out("ldd", str(binary)).splitlines():
            match = re.search(r"=>\s+(/\S+)", line)
            if match and not GLIBC.match(Path(match.group(1)).name):
                libs.add(Path(match.group(1)))
    return libs


def assemble(prefix: Path) -> tuple[dict[str, tuple[str, str, tuple[str, ...]]], str, list[str]]:
    """Fill ``prefix`` with the host gcc toolchain.

    Returns:
        The entry points (role -> (path, version, version arguments): cc, ld, size, objcopy, ar), the toolchain
        version (gcc's ``-dumpfullversion``) and the targets it provides (``host-c``).
    """
    gcc = Path(shutil.which("gcc") or "gcc").resolve()
    triplet = _out(str(gcc), "-dumpmachine")
    version = _out(str(gcc), "-dumpfullversion")
    major = version.split(".")[0]
    gcc_package = _out("dpkg", "-S", str(gcc)).split(":")[0]
    packages = [gcc_package, f"cpp-{major}", f"libgcc-{major}-dev", f"binutils-{triplet.replace('_', '-')}",
                "libc6", "libc6-dev", "linux-libc-dev", "libgcc-s1"]  # fmt: skip
    files = sorted({f for p in packages for f in _package_files(p)})
    copy_into(prefix, files)
    libexec = prefix / "usr" / "lib" / "gcc" / triplet / major
    tool_dir = prefix / "lib" / "sigforge-bin"  # gcc's -B directory: finds `as` and `ld` here, never on PATH
    tool_dir.mkdir(parents=True, exist_ok=True)
    for tool in ("as", "ld", "ld.bfd", "ar", "nm", "objcopy", "size", "strip", "ranlib"):
        src = prefix / "usr" / "bin" / f"{triplet}-{tool}"
        if src.exists():
            shutil.copyfile(src, tool_dir / tool)
            (tool_dir / tool).chmod(0o755)
    binutils = [Path("/usr/bin") / f"{triplet}-{t}" for t in ("as", "ld.bfd", "size", "objcopy", "ar")]
    internals = [libexec / n for n in ("cc1", "collect2", "lto-wrapper", "lto1") if (libexec / n).exists()]
    elves = [gcc, *binutils, *internals]
    copy_into(prefix / "lib" / "sigforge", (lib for lib in _private_libs([e.resolve() for e in elves])),
              strip=Path("/"))  # fmt: skip
    lib_dirs = sorted({str(p.parent.relative_to(prefix)) for p in (prefix / "lib" / "sigforge").rglob("*.so*")})
    env = {"LD_LIBRARY_PATH": ":".join(f"$root/{d}" for d in lib_dirs)} if lib_dirs else {}
    driver = str(gcc.relative_to("/"))
    cc = write_wrapper(prefix, "cc", driver, purpose=f"gcc {version} for {triplet}",
                       args='--sysroot="$root" -B"$root/lib/sigforge-bin/"', env=env)  # fmt: skip
    entry_points = {"cc": (cc, version, ("--version",))}
    binutils_version = _out(str(tool_dir / "ld"), "--version").splitlines()[0].split()[-1]
    for tool in ("ld", "size", "objcopy", "ar"):
        wrapper = write_wrapper(prefix, tool, f"lib/sigforge-bin/{tool}", purpose=f"binutils {tool}", env=env)
        entry_points[tool] = (wrapper, binutils_version, ("--version",))
    normalise_modes(prefix)
    return entry_points, version, ["host-c"]
