"""Builder (b): tools from Debian packages, unpacked into a relocatable prefix.

The build host fetches the ``.deb`` files of the chosen spec below into one directory: ``fetch_debs.py --spec NAME
--out DIR`` runs ``apt-get download`` for the spec's packages and the shared-library packages they depend on that a
box may lack. Each package is unpacked with ``dpkg-deb -x`` and the spec's include/exclude patterns choose the files
kept (docs, locales, unused multilibs and emulators go); links are resolved into plain files (the bundle format
admits declared links, but a plain tree is simpler to check). Every host ELF file's ``NEEDED`` libraries must then be
in the tree or on every box (glibc, libstdc++, libgcc, zlib), or the build stops. Tools run through ``bin/`` wrappers
that put the prefix's own shared libraries on ``LD_LIBRARY_PATH`` and pass the tool its relocated data directory
where it has one."""

from __future__ import annotations

import fnmatch
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from prefix import copy_into, normalise_modes, write_wrapper


@dataclass(frozen=True, slots=True)
class Tool:
    """One entry point: its role, the wrapper name, the program inside the prefix and extra leading arguments."""

    role: str
    name: str
    program: str
    args: str = ""
    version_args: tuple[str, ...] = ("--version",)


# What every Debian-family box has (glibc, libstdc++, libgcc, zlib) or what no tool needs at run time: never fetched.
BASE_PACKAGES = frozenset({
    "libc6", "libc-bin", "libcrypt1", "libstdc++6", "libgcc-s1", "gcc-12-base", "zlib1g",
    "debconf", "dpkg", "install-info", "init-system-helpers", "adduser", "lsb-base", "sysvinit-utils",
})  # fmt: skip
# The shared objects those packages provide: a tool of the prefix may need them without the prefix holding them.
BASE_SONAMES = frozenset({
    "ld-linux-x86-64.so.2", "libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "librt.so.1", "libutil.so.1",
    "libresolv.so.2", "libanl.so.1", "libcrypt.so.1", "libstdc++.so.6", "libgcc_s.so.1", "libz.so.1",
})  # fmt: skip
DROPPED = ("usr/share/doc/*", "usr/share/man/*", "usr/share/info/*", "usr/share/lintian/*", "usr/share/locale/*",
           "usr/share/bug/*", "usr/share/bash-completion/*", "usr/share/gdb/*", "etc/*", "lib/systemd/*",
           "usr/lib/systemd/*", "usr/lib/udev/*", "sbin/*", "usr/sbin/*")  # fmt: skip


@dataclass(frozen=True, slots=True)
class Spec:
    """A bundle made of Debian packages: which packages must be present, the targets, the tools.

    ``fetch_debs.py`` downloads ``packages`` and ``extra`` and, recursively, the ``lib*`` packages they depend on
    (less ``BASE_PACKAGES`` and ``skip``). On assembly a file is left out when its path (relative to the unpacked
    root, e.g. ``usr/bin/qemu-mips-static``) matches a pattern of ``DROPPED`` or ``exclude`` and none of ``include``
    (``fnmatch`` patterns: ``*`` matches across ``/`` too). ``env`` is added to every wrapper's environment
    (``$root`` is the prefix). ``moves`` renames directories of the assembled tree, for links that a package's
    ``postinst`` would make (``update-alternatives``), since the prefix holds no links.
    """

    packages: tuple[str, ...]
    targets: tuple[str, ...]
    tools: tuple[Tool, ...]
    version_of: str  # the package whose version names the bundle
    extra: tuple[str, ...] = ()
    skip: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = ()
    # Directories moved after unpacking (FROM, TO): what the packages' maintainer scripts point alternatives at.
    moves: tuple[tuple[str, str], ...] = ()
    host_libs: frozenset[str] = frozenset()  # sonames the box must provide beyond BASE_SONAMES


# arm-none-eabi: gcc's and newlib's multilibs, of which Cortex-M3 (thumb/v7-m/nofp) and Cortex-M4F
# (thumb/v7e-m+fp/hard) are kept; gcc's own support files (include/, plugin/...) sit beside the multilib dirs.
GCC_ARM = "usr/lib/gcc/arm-none-eabi/*"
NEWLIB = "usr/lib/arm-none-eabi/newlib"
MULTILIBS = ("thumb/v7-m/nofp", "thumb/v7e-m+fp/hard")
QEMU_USER = ("aarch64", "arm", "riscv64")

SPECS = {
    "hdl": Spec(
        packages=("iverilog",),
        targets=("verilog",),
        tools=(
            Tool("simulator", "iverilog", "usr/bin/iverilog", '-B"$root/usr/lib/x86_64-linux-gnu/ivl"', ("-V",)),
            Tool("simulator.runtime", "vvp", "usr/bin/vvp", '-M"$root/usr/lib/x86_64-linux-gnu/ivl"', ("-V",)),
        ),
        version_of="iverilog",
        host_libs=frozenset({"libreadline.so.8", "libbz2.so.1.0"}),  # unless fetch_debs.py --spec hdl adds them
    ),
    "arm-none-eabi": Spec(
        packages=("gcc-arm-none-eabi", "binutils-arm-none-eabi", "libnewlib-arm-none-eabi", "libnewlib-dev"),
        targets=("cortex-m4", "cortex-m3"),
        tools=(
            Tool("cc", "cc", "usr/bin/arm-none-eabi-gcc"),
            Tool("ld", "ld", "usr/bin/arm-none-eabi-ld"),
            Tool("size", "size", "usr/bin/arm-none-eabi-size"),
            Tool("objcopy", "objcopy", "usr/bin/arm-none-eabi-objcopy"),
        ),
        version_of="gcc-arm-none-eabi",
        exclude=(
            f"{GCC_ARM}/*/*",  # every multilib directory...
            f"{NEWLIB}/*/*",
            f"{GCC_ARM}/*.[ao]",  # ...and the default (-marm, armv4t) one at the top: no Cortex-M code links it
            f"{NEWLIB}/*.[ao]",
            "usr/lib/gcc/arm-none-eabi/*/cc1plus",
            "usr/bin/arm-none-eabi-c++",
            "usr/bin/arm-none-eabi-g++*",
            "usr/bin/arm-none-eabi-lto-dump*",
        ),
        include=(
            *(f"{GCC_ARM}/{m}/*" for m in MULTILIBS),
            *(f"{NEWLIB}/{m}/*" for m in MULTILIBS),
            *(f"{GCC_ARM}/{d}/*" for d in ("include", "include-fixed", "install-tools", "plugin")),
        ),
        # The postinst scripts of libnewlib-dev / libnewlib-arm-none-eabi link these into gcc's tooldir.
        moves=(("usr/include/newlib", "usr/lib/arm-none-eabi/include"), (NEWLIB, "usr/lib/arm-none-eabi/lib")),
    ),
    "qemu": Spec(
        packages=("qemu-user-static", "qemu-system-arm"),
        targets=("linux-arm64", "linux-armhf", "linux-riscv64", "cortex-m4", "cortex-m3"),
        tools=(
            Tool("emulator.aarch64", "qemu-aarch64", "usr/bin/qemu-aarch64-static"),
            Tool("emulator.arm", "qemu-arm", "usr/bin/qemu-arm-static"),
            Tool("emulator.riscv64", "qemu-riscv64", "usr/bin/qemu-riscv64-static"),
            Tool("emulator.system-arm", "qemu-system-arm", "usr/bin/qemu-system-arm"),
        ),
        version_of="qemu-user-static",
        exclude=("usr/bin/qemu-*", "usr/libexec/*", "usr/lib/binfmt.d/*", "usr/share/binfmts/*"),
        include=(*(f"usr/bin/qemu-{arch}-static" for arch in QEMU_USER), "usr/bin/qemu-system-arm"),
    ),
    "yosys": Spec(
        packages=("yosys", "berkeley-abc"),
        targets=("verilog",),
        tools=(Tool("synthesiser", "yosys", "usr/bin/yosys", version_args=("-V",)),),
        version_of="yosys",
        # yosys finds share/yosys beside its executable (/proc/self/exe/../../share/yosys) and runs ABC as
        # `berkeley-abc` from PATH (Debian builds it with ABCEXTERNAL): the wrapper puts the tree's usr/bin first.
        env=(("PATH", "$root/usr/bin:$PATH"),),
        exclude=("usr/bin/yosys-smtbmc", "usr/bin/yosys-witness", "usr/share/yosys/python3/*"),
    ),
}


def _deb_field(deb: Path, field: str) -> str:
    out = subprocess.run(["dpkg-deb", "-f", str(deb), field], check=True, capture_output=True, text=True)
    return out.stdout.strip()


def _tool_version(prefix: Path, tool: Tool) -> str:
    argv = [str(prefix / "bin" / tool.name), *tool.version_args]
    out = subprocess.run(argv, check=False, capture_output=True, text=True)
    lines = [line.strip() for line in (out.stdout + out.stderr).splitlines() if line.strip()]
    return next((line for line in lines if re.search(r"\d+\.\d+", line)), lines[0] if lines else tool.name)


def wanted(spec: Spec, rel: str) -> bool:
    """Whether the unpacked file at ``rel`` (``usr/bin/...``) goes into the prefix (see ``Spec``)."""
    if any(fnmatch.fnmatchcase(rel, pattern) for pattern in spec.include):
        return True
    return not any(fnmatch.fnmatchcase(rel, pattern) for pattern in (*DROPPED, *spec.exclude))


def _elf_machine(path: Path) -> int | None:
    with path.open("rb") as handle:
        head = handle.read(20)
    return int.from_bytes(head[18:20], "little") if len(head) == 20 and head[:4] == b"\x7fELF" else None


def unresolved_libraries(prefix: Path, provided: frozenset[str] = frozenset()) -> dict[str, list[str]]:
    """Shared objects that host-architecture programs and libraries of ``prefix`` need but neither the prefix nor
    ``BASE_SONAMES`` (nor ``provided``) supply: ``{soname: [files needing it]}``."""
    host = _elf_machine(Path(sys.executable).resolve())
    files = [p for p in sorted(prefix.rglob("*")) if p.is_file() and _elf_machine(p) == host]
    present = {p.name for p in prefix.rglob("*.so*")}
    missing: dict[str, list[str]] = {}
    for start in range(0, len(files), 200):
        chunk = files[start : start + 200]
        out = subprocess.run(
            ["readelf", "-d", "-W", *map(str, chunk)], check=False, capture_output=True, text=True
        ).stdout
        current = str(chunk[0]) if len(chunk) == 1 else ""
        for line in out.splitlines():
            if line.startswith("File: "):
                current = line[6:].strip()
            elif "(NEEDED)" in line and (match := re.search(r"\[(.+?)\]", line)):
                soname = match.group(1)
                if soname not in present and soname not in BASE_SONAMES and soname not in provided:
                    missing.setdefault(soname, []).append(str(Path(current).relative_to(prefix)))
    return missing


def assemble(prefix: Path, debs: Path, name: str) -> tuple[dict[str, tuple[str, str, tuple[str, ...]]], str, list[str]]:
    """Unpack the spec's packages (and every other .deb in ``debs``) into ``prefix``; entry points, version, targets."""
    spec = SPECS[name]
    files = sorted(debs.glob("*.deb"))
    present = {_deb_field(deb, "Package"): deb for deb in files}
    missing = [p for p in spec.packages if p not in present]
    if missing:
        raise SystemExit(
            f"debian.py: {debs} lacks {', '.join(missing)} "
            f"(python installer/toolchains/fetch_debs.py --spec {name} --out {debs})"
        )
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = Path(tmp)
        for deb in files:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        keep = (p for p in sorted(unpacked.rglob("*")) if wanted(spec, p.relative_to(unpacked).as_posix()))
        copy_into(prefix, (p for p in keep if not p.is_dir()), strip=unpacked)
    for source, dest in spec.moves:
        (prefix / dest).parent.mkdir(parents=True, exist_ok=True)
        (prefix / source).rename(prefix / dest)
    unresolved = unresolved_libraries(prefix, spec.host_libs)
    if unresolved:
        lines = [f"  {soname} (needed by {', '.join(users[:3])})" for soname, users in sorted(unresolved.items())]
        raise SystemExit(
            f"debian.py: {name}: shared libraries neither in the prefix nor on every box:\n"
            + "\n".join(lines)
            + f"\nfetch their packages into {debs} (fetch_debs.py --spec {name}) or list them in the spec's host_libs"
        )
    lib_dirs = sorted({str(p.parent.relative_to(prefix)) for p in prefix.rglob("*.so*") if p.is_file()})
    env = {"LD_LIBRARY_PATH": ":".join(f"$root/{d}" for d in lib_dirs)} if lib_dirs else {}
    env.update(spec.env)
    entry_points: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for tool in spec.tools:
        path = write_wrapper(prefix, tool.name, tool.program, purpose=f"{tool.role}: {tool.program}",
                             args=tool.args, env=env)  # fmt: skip
        entry_points[tool.role] = (path, "", tool.version_args)
    normalise_modes(prefix)
    entry_points = {role: (path, _tool_version(prefix, next(t for t in spec.tools if t.role == role)), args)
                    for role, (path, _, args) in entry_points.items()}  # fmt: skip
    version = _deb_field(present[spec.version_of], "Version").split(":")[-1]  # 15:12.2.rel1-1 -> 12.2
    match = re.match(r"\d+(\.\d+)*", version)
    return entry_points, match.group(0) if match else "0", list(spec.targets)
