"""The Debian-package toolchain specs (``installer/toolchains/debian.py``), built and used for real.

For each spec the .debs that ``installer/toolchains/fetch_debs.py --spec NAME --out .cache/debs/NAME`` downloads
(``.ci/run`` does it) become a bundle signed with the development toolchain key, the bundle is imported into a
registry the way a box does it, and only the imported tree is used afterwards, with ``PATH=/usr/bin:/bin`` (no
cross tools, emulators or synthesisers exist on the host):

* arm-none-eabi: a Cortex-M3 (soft float) and a Cortex-M4F (hard float) program with newlib's rdimon semihosting,
  our own vector table and linker script; ``size`` reads both.
* qemu: ``qemu-system-arm`` runs those programs on mps2-an385 / mps2-an386 and the test reads their semihosted
  output; ``qemu-aarch64``, ``qemu-arm`` and ``qemu-riscv64`` run tiny static Linux programs written byte by byte
  below (no cross compiler for Linux targets is at hand here).
* yosys: ``synth_ice40`` of an 8-bit counter; the statistics must list LUTs, carries and flip-flops (LUT mapping runs
  ABC, ``berkeley-abc`` inside the tree).

Skipped locally when a spec's .debs are absent, a failure under CI=true. Bundles are cached by content in
``.cache/dev-toolchain/bundles/debian-NAME-KEY`` (key: the builder sources, the toolchain key, the .deb files; older
keys' bundles are deleted).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from realservices import in_ci
from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainRegistry, ToolchainView
from support import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "installer"))
import dev_setup

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("toolchain-builders")]

ACTOR = Actor("test-debian-specs")
CACHE = REPO_ROOT / ".cache" / "dev-toolchain"
DEBS = REPO_ROOT / ".cache" / "debs"
TOOLCHAINS = REPO_ROOT / "installer" / "toolchains"
HOST_PATH = "/usr/bin:/bin"


def _debian() -> ModuleType:
    """``installer/toolchains/debian.py`` under a private name (``debian`` is also a PyPI package's name)."""
    sys.path.insert(0, str(TOOLCHAINS))  # for its own `from prefix import ...`
    spec = importlib.util.spec_from_file_location("sigforge_installer_debian", TOOLCHAINS / "debian.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


debian = _debian()


def _run(argv: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": HOST_PATH}
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=env, timeout=timeout)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _debs(name: str) -> Path:
    """``.cache/debs/NAME`` holding the spec's packages; skip (fail under CI=true) when it does not."""
    folder = DEBS / name
    missing = [p for p in debian.SPECS[name].packages if not any(folder.glob(f"{p}_*.deb"))]
    if missing:
        message = (
            f"{folder} lacks {', '.join(missing)} (.ci/run fetches them: "
            f"python installer/toolchains/fetch_debs.py --spec {name} --out .cache/debs/{name})"
        )
        if in_ci():
            pytest.fail(f"{message}, and CI=true forbids skipping it")
        pytest.skip(message)
    return folder


def _bundle(name: str) -> Path:
    """The spec's bundle signed with the development toolchain key, built once per content key."""
    debs = _debs(name)
    with dev_setup.locked(CACHE):
        keys = dev_setup.dev_keys(CACHE)
    digest = hashlib.sha256(f"{name} {keys['toolchain'].keyid}".encode())
    for source in sorted(TOOLCHAINS.glob("*.py")):
        digest.update(source.read_bytes())
    for deb in sorted(debs.glob("*.deb")):
        digest.update(f"{deb.name} {deb.stat().st_size}\n".encode())
    out_dir = CACHE / "bundles" / f"debian-{name}-{digest.hexdigest()[:16]}"
    with dev_setup.locked(CACHE, f".debian-{name}-lock"):
        existing = sorted(out_dir.glob(f"{name}-*.bundle"))
        if existing:
            return existing[0]
        key_file = sorted((CACHE / "keys").glob("toolchain-*.key"))[0]
        build = [sys.executable, str(TOOLCHAINS / "build.py"), "debian", "--debs", str(debs), "--name", name,
                 "--key", str(key_file), "--out", str(out_dir), "--expires-days", "3650",
                 "--zstd-level", dev_setup.DEV_ZSTD_LEVEL]  # fmt: skip
        result = subprocess.run(build, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, f"building the {name} bundle failed:\n{result.stdout}\n{result.stderr}"
        for stale in (CACHE / "bundles").glob(f"debian-{name}-*"):  # earlier contents: tens of MB each
            if stale != out_dir:
                shutil.rmtree(stale, ignore_errors=True)
        return Path(result.stdout.strip().splitlines()[-1])


def _tools(view: ToolchainView) -> dict[str, Path]:
    """The imported tree's entry points by role (several toolchains provide cortex-m*, so not ``resolve``)."""
    return {ep.role: Path(view.install_dir) / ep.path for ep in view.entry_points}


# --- arm-none-eabi (+ qemu-system-arm) -------------------------------------------------------------------------------

VECTORS = """\
/* Vector table for MPS2; newlib's rdimon crt0 (_start) sets up the stack and heap through semihosting. */
extern void _start(void);
extern unsigned long __stack_top;
static void fault(void) { for (;;) __asm volatile("bkpt #0"); }
__attribute__((section(".vectors"), used)) void (*const vectors[16])(void) = {
    (void (*)(void))&__stack_top, _start, fault, fault, fault, fault, fault, 0, 0, 0, 0, fault, fault, 0, fault, fault};
__attribute__((constructor(101))) static void fpu_on(void) {
#if defined(__ARM_FP)
    *(volatile unsigned long *)0xE000ED88 |= (0xFUL << 20); /* CPACR: CP10/CP11 full access */
    __asm volatile("dsb; isb");
#endif
}
"""

LINKER_SCRIPT = """\
MEMORY { CODE (rx) : ORIGIN = 0x00000000, LENGTH = 4M
         RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M }
ENTRY(_start)
SECTIONS {
  .text : { KEEP(*(.vectors)) *(.text*) *(.rodata*) KEEP(*(.init)) KEEP(*(.fini))
            . = ALIGN(4); __preinit_array_start = .; KEEP(*(.preinit_array)) __preinit_array_end = .;
            __init_array_start = .; KEEP(*(SORT(.init_array.*))) KEEP(*(.init_array)) __init_array_end = .;
            __fini_array_start = .; KEEP(*(.fini_array)) __fini_array_end = .; } > CODE
  .ARM.exidx : { *(.ARM.exidx*) } > CODE
  .data : { *(.data*) } > RAM
  .bss (NOLOAD) : { __bss_start__ = .; *(.bss*) *(COMMON) . = ALIGN(4); __bss_end__ = .; } > RAM
  end = .; _end = .; __end__ = .;
  __stack_top = ORIGIN(RAM) + LENGTH(RAM);
}
"""

PROGRAM = """\
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
int main(void) {
    float taps[16], acc = 0.0f;
    for (int i = 0; i < 16; i++) taps[i] = sqrtf((float)(i + 1));
    for (int i = 0; i < 16; i++) acc += taps[i] * taps[15 - i];
    char *buffer = malloc(64);
    snprintf(buffer, 64, "acc=%ld", lrintf(acc * 100.0f));
    printf("cortex-m says %s\\n", buffer);
    return 0;
}
"""

CORTEX_M = {  # name: (flags, multilib, QEMU machine)
    "m3": (["-mcpu=cortex-m3", "-mfloat-abi=soft"], "thumb/v7-m/nofp", "mps2-an385"),
    "m4f": (["-mcpu=cortex-m4", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"], "thumb/v7e-m+fp/hard", "mps2-an386"),
}
EXPECTED = f"cortex-m says acc={round(sum((i * (17 - i)) ** 0.5 for i in range(1, 17)) * 100)}"


def _build_cortex_m(tools: dict[str, Path], work: Path) -> dict[str, Path]:
    (work / "vectors.c").write_text(VECTORS)
    (work / "mps2.ld").write_text(LINKER_SCRIPT)
    (work / "main.c").write_text(PROGRAM)
    elves: dict[str, Path] = {}
    for name, (flags, multilib, _) in CORTEX_M.items():
        cc = [str(tools["cc"]), *flags, "-mthumb"]
        assert _run([*cc, "-print-multi-directory"], work).stdout.strip() == multilib
        _run([*cc, "-O2", "--specs=rdimon.specs", "-T", "mps2.ld", "-Wl,--gc-sections", "-o", f"{name}.elf",
              "vectors.c", "main.c", "-lm"], work)  # fmt: skip
        size = _run([str(tools["size"]), f"{name}.elf"], work).stdout.splitlines()
        assert size[0].split()[:3] == ["text", "data", "bss"], size
        assert int(size[1].split()[0]) > 1000, size  # printf, malloc and the float code of newlib are in
        elves[name] = work / f"{name}.elf"
    return elves


def test_arm_none_eabi_builds_and_qemu_runs_cortex_m(registry: ToolchainRegistry, tmp_path: Path) -> None:
    arm_bundle, qemu_bundle = _bundle("arm-none-eabi"), _bundle("qemu")
    arm = registry.import_bundle(arm_bundle, ACTOR)
    qemu = registry.import_bundle(qemu_bundle, ACTOR)
    assert set(arm.targets) == {"cortex-m3", "cortex-m4"}
    tree = Path(arm.install_dir)
    # Only the two Cortex-M multilibs are shipped (the Debian packages hold ~40 of them).
    multilibs = {str(p.parent.relative_to(tree / "usr/lib/arm-none-eabi/lib")) for p in tree.rglob("libc.a")}
    assert multilibs == {m for _, m, _ in CORTEX_M.values()}
    elves = _build_cortex_m(_tools(arm), tmp_path)
    emulator = _tools(qemu)["emulator.system-arm"]
    for name, (_, _, machine) in CORTEX_M.items():
        argv = [str(emulator), "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
                "-semihosting-config", "enable=on,target=native", "-kernel", str(elves[name])]  # fmt: skip
        out = _run(argv, tmp_path, timeout=60)
        assert out.stdout.strip() == EXPECTED, (name, out.stdout, out.stderr)


# --- qemu-user -------------------------------------------------------------------------------------------------------

MESSAGE = b"hello from qemu-user\n"


def _elf64(machine: int, code: bytes, flags: int = 0) -> bytes:
    """A static ELF64 executable: one R+X segment at 0x400000 holding the headers, ``code`` and ``MESSAGE``."""
    base, entry = 0x400000, 64 + 56
    body = code + MESSAGE
    size = entry + len(body)
    header = struct.pack("<4sBBBBB7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0, 2, machine, 1, base + entry, 64, 0,
                         flags, 64, 56, 1, 0, 0, 0)  # fmt: skip
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)
    return header + segment + body


def _elf32_arm(code: bytes) -> bytes:
    base, entry = 0x10000, 52 + 32
    body = code + MESSAGE
    size = entry + len(body)
    header = struct.pack("<4sBBBBB7xHHIIIIIHHHHHH", b"\x7fELF", 1, 1, 1, 0, 0, 2, 40, 1, base + entry, 52, 0,
                         0x05000200, 52, 32, 1, 0, 0, 0)  # fmt: skip  # EABI5, soft float
    segment = struct.pack("<IIIIIIII", 1, 0, base, base, size, size, 5, 0x1000)
    return header + segment + body


def _words(*words: int) -> bytes:
    return b"".join(struct.pack("<I", w) for w in words)


def _hello_programs() -> dict[str, bytes]:
    """write(1, MESSAGE, len); exit(0) for each Linux target, as machine code (MESSAGE follows the code)."""
    n = len(MESSAGE)
    # aarch64: movz x0,#1; adr x1,msg (+28); movz x2,#n; movz x8,#64; svc 0; movz x0,#0; movz x8,#93; svc 0
    aarch64 = _words(0xD2800020, 0x10000000 | (7 << 5) | 1, 0xD2800002 | (n << 5), 0xD2800808, 0xD4000001,
                     0xD2800000, 0xD2800BA8, 0xD4000001)  # fmt: skip
    # arm (EABI): mov r0,#1; add r1,pc,#20 (pc = here + 8 -> msg at +32); mov r2,#n; mov r7,#4; svc 0;
    # mov r0,#0; mov r7,#1; svc 0
    arm = _words(0xE3A00001, 0xE28F1014, 0xE3A02000 | n, 0xE3A07004, 0xEF000000, 0xE3A00000, 0xE3A07001, 0xEF000000)

    # riscv64: li a0,1; auipc a1,0; addi a1,a1,32 (msg at +36); li a2,n; li a7,64; ecall; li a0,0; li a7,93; ecall
    def li(rd: int, imm: int, rs1: int = 0) -> int:  # addi rd, rs1, imm
        return (imm << 20) | (rs1 << 15) | (rd << 7) | 0x13

    a0, a1, a2, a7, ecall = 10, 11, 12, 17, 0x00000073
    riscv64 = _words(li(a0, 1), 0x00000597, li(a1, 32, a1), li(a2, n), li(a7, 64), ecall, li(a0, 0), li(a7, 93), ecall)
    return {"aarch64": _elf64(183, aarch64), "arm": _elf32_arm(arm), "riscv64": _elf64(243, riscv64)}


def test_qemu_user_runs_static_linux_programs(registry: ToolchainRegistry, tmp_path: Path) -> None:
    view = registry.import_bundle(_bundle("qemu"), ACTOR)
    assert {"linux-arm64", "linux-armhf", "linux-riscv64"} <= set(view.targets)
    tree = Path(view.install_dir)
    # Only the three user-mode emulators of qemu-user-static's ~30 are shipped.
    assert sorted(p.name for p in (tree / "usr/bin").glob("qemu-*")) == [
        "qemu-aarch64-static", "qemu-arm-static", "qemu-riscv64-static", "qemu-system-arm",
    ]  # fmt: skip
    tools = _tools(view)
    for arch, image in _hello_programs().items():
        program = tmp_path / f"hello-{arch}"
        program.write_bytes(image)
        program.chmod(0o755)
        out = _run([str(tools[f"emulator.{arch}"]), str(program)], tmp_path, timeout=60)
        assert out.stdout.encode() == MESSAGE, (arch, out.stdout, out.stderr)


# --- yosys -----------------------------------------------------------------------------------------------------------

COUNTER = """\
module counter (input clk, input rst, input en, output reg [7:0] q);
  always @(posedge clk)
    if (rst) q <= 8'd0;
    else if (en) q <= q + 8'd1;
endmodule
"""


def test_yosys_synthesises_for_ice40(registry: ToolchainRegistry, tmp_path: Path) -> None:
    view = registry.import_bundle(_bundle("yosys"), ACTOR)
    assert view.targets == ["verilog"]
    (tmp_path / "counter.v").write_text(COUNTER)
    script = "read_verilog counter.v; synth_ice40 -top counter; tee -q -o stat.txt stat"
    _run([str(_tools(view)["synthesiser"]), "-q", "-p", script], tmp_path)
    stat = (tmp_path / "stat.txt").read_text()
    cells = dict(re.findall(r"^\s+(SB_\w+)\s+(\d+)$", stat, re.MULTILINE))
    assert int(re.search(r"Number of cells:\s+(\d+)", stat).group(1)) > 0, stat  # type: ignore[union-attr]
    # 8 flip-flops; the adder on the carry chain; LUT4s come out of ABC (berkeley-abc inside the tree).
    assert sum(int(n) for cell, n in cells.items() if cell.startswith("SB_DFF")) == 8, stat
    assert int(cells.get("SB_CARRY", 0)) > 0 and int(cells.get("SB_LUT4", 0)) > 0, stat
