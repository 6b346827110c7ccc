"""The sandboxed runner: limits, isolation, temp dir and environment. These spawn real processes."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sigforge.errors import SandboxError, ToolchainError
from sigforge.toolchains import runner as runner_mod
from sigforge.toolchains.runner import _INIT, OUTPUT_CAP, ProcessRunner, RunResult

pytestmark = pytest.mark.slow
PY = sys.executable


def run(r: ProcessRunner, code: str, tmp_path: Path, **kw: float) -> RunResult:
    opts = {"timeout_s": 20, "memory_mb": 512, "max_file_mb": 16} | kw
    return r.run([PY, "-I", "-c", code], cwd=tmp_path, **opts)  # type: ignore[arg-type]


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")  # a zombie is dead, just not reaped


def _marker() -> str:
    """A ``sleep`` argument no other process has, so the host's /proc finds the process whatever its pid inside."""
    return f"300.{uuid.uuid4().int % 10**9:09d}"


def _pids_with(arg: str) -> list[int]:
    """Host pids of live (non-zombie) processes with ``arg`` in their argv."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arg.encode() in argv and _alive(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _wait_gone(pid: int, grace_s: float = 2.0, *, zombie_ok: bool = False) -> bool:
    """True once ``os.kill(pid, 0)`` says there is no such process (a zombie counts as existing unless
    ``zombie_ok``: an orphan on the host waits for the host's init to reap it, which can take a while)."""
    deadline = time.monotonic() + grace_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if zombie_ok and not _alive(pid):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)


def sh(r: ProcessRunner, script: str, tmp_path: Path, timeout_s: float = 10) -> RunResult:
    return r.run(["sh", "-c", script], cwd=tmp_path, timeout_s=timeout_s, memory_mb=256, max_file_mb=1)


def test_runs_and_captures_output(tmp_path: Path) -> None:
    res = run(ProcessRunner(), "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)", tmp_path)
    assert (res.returncode, res.stdout, res.stderr, res.timed_out) == (3, b"out\n", b"err\n", False)
    assert res.argv[0] == PY and res.duration_s > 0


@pytest.mark.parametrize("network", ["isolate", "trust-host"])
def test_timeout_kills_the_whole_process_group(tmp_path: Path, network: str) -> None:
    mark = _marker()
    found: list[int] = []

    def spot() -> None:  # the grandchild's host pid, seen from outside while the run is on
        deadline = time.monotonic() + 5
        while not found and time.monotonic() < deadline:
            found.extend(_pids_with(mark))
            time.sleep(0.02)

    spotter = threading.Thread(target=spot)
    spotter.start()
    start = time.monotonic()
    res = sh(ProcessRunner(network), f"sleep {mark} & wait", tmp_path, timeout_s=1.0)  # type: ignore[arg-type]
    spotter.join()
    assert res.timed_out and res.returncode == -signal.SIGKILL
    assert time.monotonic() - start < 10
    assert found, "the grandchild was never seen running"
    # In a PID namespace the kernel reaps the namespace's orphans itself; on the host, init does, eventually.
    assert all(_wait_gone(pid, 5, zombie_ok=network == "trust-host") for pid in found)


def test_setsid_grandchild_dies_with_the_run(tmp_path: Path) -> None:
    # setsid() leaves the run's process group, so only the PID namespace catches it.
    mark = _marker()
    found: list[int] = []
    result: list[RunResult] = []
    runner = ProcessRunner("isolate")
    worker = threading.Thread(
        target=lambda: result.append(sh(runner, f"setsid sleep {mark} & echo $!; sleep 1", tmp_path))
    )
    worker.start()
    deadline = time.monotonic() + 5
    while not found and time.monotonic() < deadline:
        found.extend(_pids_with(mark))
        time.sleep(0.02)
    worker.join()
    (res,) = result
    assert res.returncode == 0 and not res.timed_out
    assert int(res.stdout) > 1  # its pid inside the namespace (the program is 2, our init is 1)
    assert found, "the setsid grandchild was never seen running"
    (host_pid,) = found
    assert _wait_gone(host_pid), "a setsid grandchild outlived the run"


def test_setsid_grandchild_escapes_the_process_group_without_a_pid_namespace(tmp_path: Path) -> None:
    # The control for the test above (trust-host has no PID namespace): the printed pid is a host pid.
    mark = _marker()
    res = sh(ProcessRunner("trust-host"), f"setsid sleep {mark} & echo $!", tmp_path)
    pid = int(res.stdout)
    try:
        assert res.returncode == 0 and not _wait_gone(pid, 0.3)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("network", ["isolate", "trust-host"])
@pytest.mark.parametrize(
    ("script", "expected"),
    [("exit 7", 7), ("kill -9 $$", -signal.SIGKILL), ("kill -TERM $$", -signal.SIGTERM), ("kill -SEGV $$", -11)],
)
def test_exit_codes_and_signals_come_through(tmp_path: Path, network: str, script: str, expected: int) -> None:
    res = sh(ProcessRunner(network), f"echo out; echo err >&2; {script}", tmp_path)  # type: ignore[arg-type]
    assert (res.returncode, res.stdout, res.stderr, res.timed_out) == (expected, b"out\n", b"err\n", False)


def test_program_has_its_own_pid_namespace_and_is_not_its_init(tmp_path: Path) -> None:
    runner = ProcessRunner("isolate")
    res = sh(runner, "echo $$; ls /proc | grep -c '^[0-9]'", tmp_path)
    pid, visible = res.stdout.split()
    assert res.returncode == 0 and int(pid) == 2
    if runner.private_proc:
        assert int(visible) < 10  # init, sh, ls, grep: no host process is listed


def test_pid_namespace_without_a_private_proc_when_mount_proc_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = runner_mod._probe
    monkeypatch.setattr(runner_mod, "_probe", lambda w: "mount: permission denied" if "--mount-proc" in w else real(w))
    runner = ProcessRunner("isolate")
    assert not runner.private_proc and "--pid" in runner._sandbox
    res = sh(runner, "echo $$; kill -9 $$", tmp_path)
    assert (res.stdout, res.returncode) == (b"2\n", -signal.SIGKILL)


def test_init_refuses_to_run_outside_a_new_pid_namespace() -> None:
    proc = subprocess.run([PY, "-I", "-S", "-c", _INIT, "-", "/bin/true"], capture_output=True, check=False)
    assert proc.returncode == 1 and b"not pid 1" in proc.stderr


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
def listener() -> Iterator[int]:
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
