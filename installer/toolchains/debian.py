"""Builder (b): tools from Debian packages, unpacked into a relocatable prefix.

The build host fetches the ``.deb`` files (``apt-get download PKG...`` for the packages of the chosen spec below and
any shared-library dependencies the box may lack) into one directory. Each package is unpacked with
``dpkg-deb -x``; links are resolved into plain files (the bundle format admits declared links, but a plain tree is
simpler to check). Tools run through ``bin/`` wrappers that put the prefix's own shared libraries on
``LD_LIBRARY_PATH`` and pass the tool its relocated data directory where it has one. The box provides glibc,
libstdc++ and zlib (every Debian-family system does).
"""

from __future__ import annotations

import re
import shutil
import subprocess
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


@dataclass(frozen=True, slots=True)
class Spec:
    """A bundle made of Debian packages: which packages must be present, the targets, the tools."""

    packages: tuple[str, ...]
    targets: tuple[str, ...]
    tools: tuple[Tool, ...]
    version_of: str  # the package whose version names the bundle


SPECS = {
    "hdl": Spec(
        packages=("iverilog",),
        targets=("verilog",),
        tools=(
            Tool("simulator", "iverilog", "usr/bin/iverilog", '-B"$root/usr/lib/x86_64-linux-gnu/ivl"', ("-V",)),
            Tool("simulator.runtime", "vvp", "usr/bin/vvp", '-M"$root/usr/lib/x86_64-linux-gnu/ivl"', ("-V",)),
        ),
        version_of="iverilog",
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


def assemble(prefix: Path, debs: Path, name: str) -> tuple[dict[str, tuple[str, str, tuple[str, ...]]], str, list[str]]:
    """Unpack the spec's packages (and every other .deb in ``debs``) into ``prefix``; entry points, version, targets."""
    spec = SPECS[name]
    files = sorted(debs.glob("*.deb"))
    present = {_deb_field(deb, "Package"): deb for deb in files}
    missing = [p for p in spec.packages if p not in present]
    if missing:
        raise SystemExit(f"debian.py: {debs} lacks {', '.join(missing)} (apt-get download {' '.join(missing)})")
    with tempfile.TemporaryDirectory() as tmp:
        unpacked = Path(tmp)
        for deb in files:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(unpacked)], check=True)
        for doc in ("usr/share/doc", "usr/share/man", "usr/share/lintian", "usr/share/locale"):
            shutil.rmtree(unpacked / doc, ignore_errors=True)
        copy_into(prefix, (p for p in unpacked.rglob("*") if not p.is_dir()), strip=unpacked)
    lib_dirs = sorted({str(p.parent.relative_to(prefix)) for p in prefix.rglob("*.so*") if p.is_file()})
    env = {"LD_LIBRARY_PATH": ":".join(f"$root/{d}" for d in lib_dirs)} if lib_dirs else {}
    entry_points: dict[str, tuple[str, str, tuple[str, ...]]] = {}
    for tool in spec.tools:
        path = write_wrapper(prefix, tool.name, tool.program, purpose=f"{tool.role}: {tool.program}",
                             args=tool.args, env=env)  # fmt: skip
        entry_points[tool.role] = (path, "", tool.version_args)
    normalise_modes(prefix)
    entry_points = {role: (path, _tool_version(prefix, next(t for t in spec.tools if t.role == role)), args)
                    for role, (path, _, args) in entry_points.items()}  # fmt: skip
    version = _deb_field(present[spec.version_of], "Version").split(":")[-1]
    return entry_points, re.sub(r"[^0-9.].*$", "", version), list(spec.targets)
