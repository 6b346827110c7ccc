"""The frozen ``sigforge`` binary (PyInstaller, ``appliance/sigforge.spec``) passes the end-to-end smoke test.

Only the frozen binary runs sigforge here: no Python on its ``PATH``, no ``PYTHONPATH``, no virtual environment.
The test process only prepares the data directory (development trust root and the host-gcc toolchain bundle,
``support.provision_toolchain``) and talks HTTP. The binary is built once per content hash (``frozen_build``).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from frozen_build import build, pyinstaller_version

from realservices import in_ci
from sigforge.settings import load_settings
from support import FIR_DECIMATE, REPO_ROOT, provision_toolchain

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("frozen"), pytest.mark.timeout(900)]

FAST_BROKER = {
    "SIGFORGE_BROKER_HEARTBEAT_INTERVAL_S": "0.2",
    "SIGFORGE_BROKER_HEARTBEAT_TTL_S": "2",
    "SIGFORGE_BROKER_POLL_INTERVAL_S": "0.05",
}


def _require_pyinstaller() -> None:
    if pyinstaller_version() is None:
        message = "PyInstaller is not installed (pip install -e '.[dev]' brings it)"
        if in_ci():
            pytest.fail(f"{message}, and CI=true forbids skipping the frozen-binary test")
        pytest.skip(message)


@pytest.fixture(scope="module")
def onedir() -> Path:
    _require_pyinstaller()
    return build("onedir")[0]


@pytest.fixture(scope="module")
def onefile() -> Path:
    _require_pyinstaller()
    return build("onefile")[0]


def frozen_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """A clean environment: an empty PATH directory (no python), no PYTHON*/VIRTUAL_ENV, the data dir."""
    empty_bin = tmp_path / "empty-bin"
    empty_bin.mkdir(exist_ok=True)
    data = str(tmp_path / "data")
    return {"PATH": str(empty_bin), "HOME": str(tmp_path), "LANG": "C.UTF-8", "SIGFORGE_DATA_DIR": data,
            **FAST_BROKER, **extra}  # fmt: skip


def run(exe: Path, *args: str, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False,
                          cwd=env["HOME"])  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


def _http(url: str, body: dict[str, Any] | None = None) -> tuple[int, bytes]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


class Proc:
    """A long-running frozen command, its output in a log file; stopped with one SIGTERM."""

    def __init__(self, exe: Path, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            # its own process group, so that a failed test can take down the whole pool (see `procs`)
            self.proc = subprocess.Popen([str(exe), *args], env=env, stdout=out, stderr=subprocess.STDOUT,
                                         cwd=env["HOME"], start_new_session=True)  # fmt: skip

    def text(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.proc.args[1]} did not stop on SIGTERM:\n{self.text()}") from None


@pytest.fixture
def procs() -> Iterator[list[Proc]]:
    started: list[Proc] = []
    yield started
    for p in started:  # after a failure: nothing of the frozen processes may outlive the test
        if p.alive():
            p.proc.send_signal(signal.SIGTERM)
            try:
                p.proc.wait(30)
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(p.proc.pid, signal.SIGKILL)


def test_frozen_onedir_end_to_end(onedir: Path, tmp_path: Path, procs: list[Proc]) -> None:
    env = frozen_env(tmp_path)
    version = run(onedir, "--version", env=env)
    assert (version.returncode, version.stdout.strip()) == (0, "sigforge 0.1.0"), version.stderr

    upgraded = run(onedir, "db", "upgrade", env=env)
    assert upgraded.returncode == 0, upgraded.stdout + upgraded.stderr
    current = run(onedir, "db", "current", env=env)
    assert current.returncode == 0 and "head" in current.stdout, current.stdout + current.stderr
    # PostgreSQL through psycopg's bundled libpq: a closed port gives libpq's own refusal, not an import error
    pg = run(onedir, "db", "current", env={**env, "SIGFORGE_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1:1/x"})
    assert pg.returncode != 0 and "Connection refused" in pg.stderr, pg.stderr

    # The test process plays the installer: trust root + signed host-gcc bundle into the same data dir.
    provision_toolchain(load_settings(env={"SIGFORGE_DATA_DIR": env["SIGFORGE_DATA_DIR"]}))
    listed = run(onedir, "toolchain", "list", env=env)
    assert listed.returncode == 0 and "host-gcc" in listed.stdout and "verified" in listed.stdout, listed.stdout

    port = _free_port()
    serve = Proc(onedir, ["serve", "--host", "127.0.0.1", "--port", str(port)], env, tmp_path / "serve.log")
    procs.append(serve)
    worker = Proc(onedir, ["worker", "--processes", "2", "--threads", "1"], env, tmp_path / "worker.log")
    procs.append(worker)
    base = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert serve.alive(), f"frozen serve exited:\n{serve.text()}"
        try:
            return _http(f"{base}/healthz")[0] == 200
        except OSError:
            return False

    _wait(healthy, 60, "the frozen web service's /healthz")
    # two worker processes and the scheduled toolchain check (the fork function), all forked by the frozen pool
    _wait(
        lambda: (worker.alive() and len(_children(worker.proc.pid)) >= 3) or not worker.alive(), 60, "worker processes"
    )
    assert worker.alive(), f"frozen worker exited:\n{worker.text()}"
    pool = _children(worker.proc.pid)
    assert len(pool) == 3, pool

    console = _http(f"{base}/")
    assert console[0] == 200 and b"<html" in console[1].lower()  # the console's static files are in the binary
    for path in ("/readyz", "/schema/openapi.json", "/schema", "/static/vendor/swagger-ui/swagger-ui-bundle.js"):
        assert _http(f"{base}{path}")[0] == 200, path  # readiness (db + broker), OpenAPI, the vendored Swagger UI

    status, body = _http(
        f"{base}/api/v1/translations",
        {"source": FIR_DECIMATE, "target": "host-c", "input_dtype": "float32", "frame_length": 256},
    )
    assert status == 201, body
    translation_id = json.loads(body)["id"]

    def finished() -> dict[str, Any] | None:
        assert worker.alive(), f"frozen worker exited:\n{worker.text()}"
        state = json.loads(_http(f"{base}/api/v1/translations/{translation_id}")[1])
        return state if state["status"] not in ("queued", "running") else None

    state = _wait(finished, 240, "the translation to finish")
    assert state["status"] == "verified", f"{state}\nworker log:\n{worker.text()}"
    status, artifact = _http(f"{base}/api/v1/translations/{translation_id}/artifact")
    assert status == 200
    with tarfile.open(fileobj=io.BytesIO(artifact), mode="r:gz") as tar:
        names = tar.getnames()
    assert any(n.endswith("report.json") for n in names) and any(n.endswith(".c") for n in names), names

    out = tmp_path / "artifact"
    translated = run(onedir, "translate", str(REPO_ROOT / "examples" / "fir_decimate.py"), "--frame", "256",
                     "--out", str(out), env=env)  # fmt: skip
    assert translated.returncode == 0 and "VERIFIED" in translated.stdout, translated.stdout + translated.stderr
    assert (out / "report.json").is_file()

    # uvicorn shuts down gracefully, then re-raises the SIGTERM it caught (as it does unfrozen)
    assert serve.stop() in (0, -signal.SIGTERM), serve.text()
    assert "Application shutdown complete" in serve.text()
    assert worker.stop() == 0, worker.text()
    for pid in pool:  # the pool's processes are gone (not even zombies: the pool reaped them)
        assert not Path(f"/proc/{pid}").exists() or _wait(lambda p=pid: not Path(f"/proc/{p}").exists(), 10, "exit")
    for log in (serve.text(), worker.text()):
        assert "Traceback" not in log, log


def test_frozen_onefile_version_and_translate(onefile: Path, tmp_path: Path) -> None:
    unpack = tmp_path / "unpack"  # where the onefile binary unpacks itself ($TMPDIR); empty again after each run
    unpack.mkdir()
    env = frozen_env(tmp_path, TMPDIR=str(unpack))
    version = run(onefile, "--version", env=env)
    assert (version.returncode, version.stdout.strip()) == (0, "sigforge 0.1.0"), version.stderr
    assert run(onefile, "db", "upgrade", env=env).returncode == 0
    provision_toolchain(load_settings(env={"SIGFORGE_DATA_DIR": env["SIGFORGE_DATA_DIR"]}))
    out = tmp_path / "artifact"
    translated = run(onefile, "translate", str(REPO_ROOT / "examples" / "moving_average.py"), "--frame", "256",
                     "--out", str(out), env=env)  # fmt: skip
    assert translated.returncode == 0 and "VERIFIED" in translated.stdout, translated.stdout + translated.stderr
    assert list(unpack.iterdir()) == []
