"""The toolchain builders of ``installer/toolchains/``, run for real: build a signed bundle, import it into a registry
the way a box does, then use the imported tree (and only it) to build something.

* host-gcc: the bundle ``make run`` uses; the imported ``bin/cc`` must find cc1, as and ld inside its own tree.
* debian ``hdl``: a real ``iverilog`` .deb (``.ci/run`` fetches it into ``.cache/debs``); skipped locally when the
  .deb is absent, a failure under CI=true.
* zig: built from the installed ``ziglang`` package (the ``dev`` extra) with a warmed cache for linux-arm64; the bundle
  is cached in ``.cache/dev-toolchain`` by content (the warm-up takes minutes on 2 cores).
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from realservices import in_ci
from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.settings import Settings
from support import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "installer"))
sys.path.insert(0, str(REPO_ROOT / "installer" / "toolchains"))
import dev_setup
import zig  # installer/toolchains/zig.py (the builder's target table)

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("toolchain-builders")]

ACTOR = Actor("test-builders")
CACHE = REPO_ROOT / ".cache" / "dev-toolchain"
DEBS = REPO_ROOT / ".cache" / "debs"
EM_AARCH64, EM_ARM, EM_RISCV = 183, 40, 243
DOT_C = """float dot(const float *a, const float *b, int n) {
    float s = 0;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}
"""


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env={**os.environ, **env}, timeout=600)
    assert result.returncode == 0, f"{argv} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    return result


def _inside(path: str, tree: Path) -> bool:
    return Path(path).resolve().is_relative_to(tree.resolve())


# --- host-gcc ----------------------------------------------------------------------------------------------------


def test_host_gcc_bundle_is_relocatable(registry: ToolchainRegistry, tmp_path: Path) -> None:
    with dev_setup.locked(CACHE):
        bundle = dev_setup.host_gcc_bundle(CACHE, dev_setup.dev_keys(CACHE))
    view = registry.import_bundle(bundle, ACTOR)
    tree = Path(view.install_dir)
    cc = registry.resolve("host-c", ACTOR).tool("cc")
    (tmp_path / "hello.c").write_text('#include <stdio.h>\nint main(void) { puts("hello from the tree"); return 0; }\n')
    result = _run([str(cc), "-v", "-O2", "hello.c", "-o", "hello"], tmp_path, PATH="/nonexistent")
    # Every program the driver ran (cc1, as, collect2 and the ld it calls) lives inside the imported tree.
    programs = [line.split()[0] for line in result.stderr.splitlines() if line.startswith(" /")]
    names = {Path(p).name for p in programs}
    assert {"cc1", "as", "collect2"} <= names, result.stderr
    assert all(_inside(p, tree) for p in programs), programs
    # collect2 runs the ld the driver names for it (it does not echo it under -v): ask the driver.
    linker = _run([str(cc), "-print-prog-name=ld"], tmp_path, PATH="/nonexistent").stdout.strip()
    assert linker.startswith("/") and _inside(linker, tree), linker
    assert subprocess.run([str(tmp_path / "hello")], capture_output=True, text=True).stdout == "hello from the tree\n"


# --- debian: hdl (iverilog) --------------------------------------------------------------------------------------

TESTBENCH = """\
module tb;
  reg [7:0] a, b;
  wire [8:0] sum = a + b;
  initial begin
    a = 8'd200; b = 8'd100;
    #1 $display("sum=%0d", sum);
    $finish;
  end
endmodule
"""


def _iverilog_debs(tmp_path: Path) -> Path:
    debs = sorted(DEBS.glob("iverilog_*.deb"))
    if not debs:
        message = f"no iverilog .deb in {DEBS} (.ci/run fetches it: apt-get download iverilog)"
        if in_ci():
            pytest.fail(f"{message}, and CI=true forbids skipping it")
        pytest.skip(message)
    only = tmp_path / "debs"
    only.mkdir()
    (only / debs[-1].name).symlink_to(debs[-1])
    return only


def test_hdl_bundle_simulates_verilog(registry: ToolchainRegistry, tmp_path: Path) -> None:
    debs = _iverilog_debs(tmp_path)
    key = sorted((CACHE / "keys").glob("toolchain-*.key"))[0]
    build = [sys.executable, str(REPO_ROOT / "installer" / "toolchains" / "build.py"), "debian", "--debs", str(debs),
             "--name", "hdl", "--key", str(key), "--out", str(tmp_path / "out")]  # fmt: skip
    bundle = Path(_run(build, tmp_path).stdout.strip().splitlines()[-1])
    view = registry.import_bundle(bundle, ACTOR)
    assert (view.name, view.targets) == ("hdl", ["verilog"])
    resolved = registry.resolve("verilog", ACTOR, role="simulator")
    work = tmp_path / "sim"
    work.mkdir()
    (work / "tb.v").write_text(TESTBENCH)
    # No system iverilog on PATH: the wrappers must find ivl, ivlpp and the VPI modules inside the tree.
    _run([str(resolved.tool("simulator")), "-o", "tb.vvp", "tb.v"], work, PATH="/usr/bin:/bin")
    out = _run([str(resolved.tool("simulator.runtime")), "tb.vvp"], work, PATH="/usr/bin:/bin")
    assert "sum=300" in out.stdout, out.stdout + out.stderr


# --- zig -----------------------------------------------------------------------------------------------------------


def _elf_machine(path: Path) -> int:
    head = path.read_bytes()[:20]
    assert head[:4] == b"\x7fELF", head
    return int(struct.unpack("<H", head[18:20])[0])


def _libc_archives(cache: Path) -> set[str]:
    return {str(p.relative_to(cache)) for p in cache.glob("o/*/libc.a")}


@pytest.mark.timeout(1200)
def test_zig_bundle_cross_compiles_without_rebuilding_libc(
    registry: ToolchainRegistry, settings: Settings, tmp_path: Path
) -> None:
    """The libc shipped in the bundle's cache is the one linked on the box: the tree is extracted to another path than
    it was built in (zig keys its cache by the library directory's path, which the wrapper keeps host-independent)."""
    pytest.importorskip("ziglang", reason="the dev extra installs ziglang (pip install -e .[dev])")
    bundle = dev_setup.zig_bundle(CACHE, ("linux-arm64",))
    view = registry.import_bundle(bundle, ACTOR)
    assert "linux-arm64" in view.targets and view.file_count > 19_000
    resolved = registry.resolve("linux-arm64", ACTOR)
    shipped = _libc_archives(Path(view.install_dir) / "cache")
    assert shipped, "the bundle ships no pre-built libc"
    (tmp_path / "fir.c").write_text(
        "#include <math.h>\n#include <stdio.h>\n"
        'int main(void) { float y = 0; for (int i = 0; i < 16; i++) y += sinf(i); printf("%f\\n", y); return 0; }\n'
    )
    # As a job builds: in the sandbox, told only the toolchain's state directory (its per-node writable cache).
    argv = [str(resolved.tool("cc")), "-target", "aarch64-linux-musl", "-O2", "-static", "fir.c", "-lm", "-o", "fir"]
    limits = settings.limits
    result = registry.runner.run(argv, cwd=tmp_path, timeout_s=900, memory_mb=limits.build_memory_mb,
                                 max_file_mb=limits.max_file_mb, env=resolved.environment())  # fmt: skip
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    assert _elf_machine(tmp_path / "fir") == EM_AARCH64
    cache = resolved.state_dir / "zig-cache"
    assert _libc_archives(cache) == shipped, "zig built a new libc instead of using the shipped one"
    (tmp_path / "dot.c").write_text(DOT_C)
    # The other targets the builder knows, compiled to objects (linking them needs their warmed libc, which this
    # development bundle leaves out to keep CI short): the triples and CPU flags are what zig accepts.
    for target, machine in (("linux-armhf", EM_ARM), ("linux-riscv64", EM_RISCV), ("cortex-m4", EM_ARM)):
        triple, flags = zig.TARGETS[target]
        argv = [str(resolved.tool("cc")), "-target", triple, *flags, "-O2", "-c", "fir.c", "-o", f"{target}.o"]
        if target == "cortex-m4":  # bare metal: no C library headers
            argv[-3] = "dot.c"
        result = registry.runner.run(argv, cwd=tmp_path, timeout_s=300, memory_mb=limits.build_memory_mb,
                                     max_file_mb=limits.max_file_mb, env=resolved.environment())  # fmt: skip
        assert result.returncode == 0, (target, result.stderr.decode(errors="replace")[-2000:])
        assert _elf_machine(tmp_path / f"{target}.o") == machine, target
    # The signed tree was not written; removing the toolchain takes its node-local state with it.
    assert registry.verify(view.name, ACTOR, full=True)[0].ok
    registry.remove(view.name, ACTOR)
    assert not resolved.state_dir.exists()
