"""How ``sigforge up`` starts the update runner in pidfile mode: ``launch_detached`` leaves no process below the
caller (the updater's stop step kills ``up`` and all its descendants), and ``watch_update_requests`` launches
``current/bin/sigforge update run-requests --services pidfile --prefix PREFIX`` when a request is pending and no
updater holds the lock, not before."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from sigforge.cli.serve import watch_update_requests
from sigforge.cli.service_manager import _descendants, launch_detached
from sigforge.settings import load_settings
from sigforge.updates import UpdateRequest, save_request


def _wait_for(path: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while not (path.exists() and path.read_text().endswith("\n")):
        assert time.monotonic() < deadline, f"{path} was not written"
        time.sleep(0.05)
    return path.read_text()


def test_a_detached_command_is_not_below_its_launcher(tmp_path: Path) -> None:
    out = tmp_path / "stat"
    script = f'sleep 0.5; read -r line < /proc/$$/stat; echo "$$ $line" > {out}.tmp; mv {out}.tmp {out}; sleep 2'
    launch_detached(["/bin/sh", "-c", script], tmp_path / "logs" / "launch.log")
    pid_text, stat = _wait_for(out).split(" ", 1)
    ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
    assert ppid != os.getpid()
    assert int(pid_text) not in _descendants(os.getpid())
    assert os.getsid(int(pid_text)) != os.getsid(0)  # its own session, too


def _release_layout(prefix: Path, out: Path) -> None:
    binary = prefix / "opt" / "sigforge" / "releases" / "1.0.0" / "bin" / "sigforge"
    binary.parent.mkdir(parents=True)
    binary.write_text(f'#!/bin/sh\necho "$@" > {out}.tmp && mv {out}.tmp {out}\n')
    binary.chmod(0o755)
    (prefix / "opt" / "sigforge" / "current").symlink_to("releases/1.0.0")


def test_up_launches_the_runner_for_a_pending_request_once_the_lock_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("INVOCATION_ID", raising=False)
    prefix = tmp_path / "box"
    out = tmp_path / "runner-args"
    _release_layout(prefix, out)
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data")})
    updates = settings.data_path / "updates"
    requests = updates / "requests"
    requests.mkdir(parents=True)
    (requests / "r1.bundle").write_bytes(b"verified bundle")
    save_request(requests, UpdateRequest(id="r1", version="2.0.0", requested_by="alice",
                                         requested_at=datetime.now(UTC)))  # fmt: skip
    fd = os.open(updates / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # an updater runs: nothing is launched
    stop = threading.Event()
    watcher = threading.Thread(target=watch_update_requests, args=(settings, None, stop),
                               kwargs={"prefix": prefix, "poll_s": 0.05})  # fmt: skip
    watcher.start()
    try:
        time.sleep(0.5)
        assert not out.exists()
        os.close(fd)
        args = _wait_for(out).split()
        assert args == ["update", "run-requests", "--services", "pidfile", "--prefix", str(prefix)]
    finally:
        stop.set()
        watcher.join(10)
    assert not watcher.is_alive()


def test_outside_a_release_layout_up_does_not_watch(tmp_path: Path) -> None:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data")})
    stop = threading.Event()
    started = time.monotonic()
    watch_update_requests(settings, None, stop, prefix=tmp_path / "nothing", poll_s=0.05)  # returns at once
    assert time.monotonic() - started < 5


def test_as_a_systemd_unit_up_leaves_requests_to_the_path_unit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "box"
    _release_layout(prefix, tmp_path / "runner-args")
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data")})
    monkeypatch.setenv("INVOCATION_ID", "0123456789abcdef0123456789abcdef")
    stop = threading.Event()
    watcher = threading.Thread(target=watch_update_requests, args=(settings, None, stop),
                               kwargs={"prefix": prefix, "poll_s": 0.05})  # fmt: skip
    watcher.start()
    watcher.join(30)  # returns at once instead of polling until stopped
    stopped_by_itself = not watcher.is_alive()
    stop.set()
    watcher.join(10)
    assert stopped_by_itself
