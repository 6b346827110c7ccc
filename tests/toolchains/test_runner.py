"""The sandboxed runner: limits, isolation, temp dir and environment. These spawn real processes."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import pytest

from sigforge.errors import SandboxError, ToolchainError
from sigforge.toolchains import runner as runner_mod
from sigforge.toolchains.runner import OUTPUT_CAP, ProcessRunner

pytestmark = pytest.mark.slow
PY = sys.executable


def run(r: ProcessRunner, code: str, tmp_path: Path, **kw):
    opts = {"timeout_s": 20, "memory_mb": 512, "max_file_mb": 16} | kw
    return r.run([PY, "-I", "-c", code], cwd=tmp_path, **opts)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead, just not reaped


def test_runs_and_captures_output(tmp_path: Path) -> None:
    res = run(ProcessRunner(), "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)", tmp_path)
    assert (res.returncode, res.stdout, res.stderr, res.timed_out) == (3, b"out\n", b"err\n", False)
    assert res.argv[0] == PY and res.duration_s > 0


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild.pid"
    script = f"sleep 300 & echo $! > {pidfile}; wait"
    start = time.monotonic()
    res = ProcessRunner().run(["sh", "-c", script], cwd=tmp_path, timeout_s=1.0, memory_mb=256, max_file_mb=1)
    assert res.timed_out and res.returncode < 0
    assert time.monotonic() - start < 10
    grandchild = int(pidfile.read_text())
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(grandchild)


def test_memory_limit_is_enforced(tmp_path: Path) -> None:
    res = run(ProcessRunner(), "b = bytearray(400 * 1024 * 1024); print('allocated')", tmp_path, memory_mb=150)
    assert res.returncode != 0 and b"allocated" not in res.stdout
    assert b"MemoryError" in res.stderr
    ok = run(ProcessRunner(), "b = bytearray(50 * 1024 * 1024); print('allocated')", tmp_path, memory_mb=400)
    assert ok.returncode == 0


def test_file_size_limit_is_enforced(tmp_path: Path) -> None:
    code = "open('big.bin', 'wb').write(b'x' * (3 * 1024 * 1024))"
    res = run(ProcessRunner(), code, tmp_path, max_file_mb=1)
    assert res.returncode != 0
    assert (tmp_path / "big.bin").stat().st_size <= 1024 * 1024


@pytest.fixture
def listener():
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    yield srv.getsockname()[1]
    srv.close()


CONNECT = "import socket, sys; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')"


def test_network_is_isolated(tmp_path: Path, listener: int) -> None:
    res = run(ProcessRunner("isolate"), CONNECT.format(port=listener), tmp_path)
    assert res.returncode != 0 and b"connected" not in res.stdout
    assert b"unreachable" in res.stderr.lower() or b"refused" in res.stderr.lower()
    # inside the namespace there is no interface but a downed loopback
    links = ProcessRunner("isolate").run(
        ["cat", "/proc/net/dev"], cwd=tmp_path, timeout_s=5, memory_mb=64, max_file_mb=1
    )
    names = [line.split(":")[0].strip() for line in links.stdout.decode().splitlines()[2:]]
    assert names == ["lo"]


def test_trust_host_keeps_the_host_network(tmp_path: Path, listener: int) -> None:
    res = run(ProcessRunner("trust-host"), CONNECT.format(port=listener), tmp_path)
    assert res.returncode == 0 and b"connected" in res.stdout  # the control for the isolation test


def test_own_temp_dir_cwd_and_scrubbed_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_TOKEN_FOR_TEST", "hunter2")
    code = (
        "import os, json, tempfile; p = os.path.join(tempfile.gettempdir(), 'probe'); open(p, 'w').write('x');"
        "print(json.dumps({'env': dict(os.environ), 'cwd': os.getcwd(), 'probe': p}))"
    )
    import json

    res = ProcessRunner().run(
        [PY, "-I", "-c", code], cwd=tmp_path, timeout_s=10, memory_mb=512, max_file_mb=1, env={"EXTRA": "1"}
    )
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    env = info["env"]
    assert "SECRET_TOKEN_FOR_TEST" not in env
    assert env["LANG"] == "C" and env["EXTRA"] == "1"
    assert env["HOME"] == env["TMPDIR"] and "sigforge-run-" in env["TMPDIR"]
    assert Path(info["cwd"]) == tmp_path.resolve()
    assert info["probe"].startswith(env["TMPDIR"])
    assert not Path(env["TMPDIR"]).exists()  # removed after the run
    assert set(env) <= {"PATH", "LANG", "LC_ALL", "TMPDIR", "HOME", "EXTRA", "PWD", "LC_CTYPE"}


def test_output_is_capped(tmp_path: Path) -> None:
    res = run(ProcessRunner(), f"import sys; sys.stdout.write('x' * {OUTPUT_CAP + 5000})", tmp_path)
    assert res.returncode == 0 and res.output_truncated and len(res.stdout) == OUTPUT_CAP


def test_missing_program_is_a_toolchain_error(tmp_path: Path) -> None:
    with pytest.raises(ToolchainError, match="not found"):
        ProcessRunner().run(["no-such-program-xyz"], cwd=tmp_path, timeout_s=1, memory_mb=64, max_file_mb=1)


def test_isolation_unavailable_is_refused_not_weakened(monkeypatch: pytest.MonkeyPatch) -> None:
    real = runner_mod._tool
    monkeypatch.setattr(runner_mod, "_tool", lambda name: None if name == "unshare" else real(name))
    with pytest.raises(SandboxError, match=r"sandbox\.network"):
        ProcessRunner("isolate")
    assert ProcessRunner("trust-host").network == "trust-host"
    monkeypatch.setattr(runner_mod, "_tool", real)
    monkeypatch.setattr(runner_mod, "_probe", lambda wrapper: "unshare: Operation not permitted")
    with pytest.raises(SandboxError, match=r"sandbox\.network") as info:
        ProcessRunner()
    assert "Operation not permitted" in info.value.message
    with pytest.raises(SandboxError):
        ProcessRunner("open")  # type: ignore[arg-type]
