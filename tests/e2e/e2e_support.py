"""Processes for end-to-end tests: a real worker pool on the embedded broker, sharing a data dir with the test."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from support import child_env


def worker_children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except FileNotFoundError:
        return []


class WorkerPool:
    """``sigforge worker`` as a separate process tree."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env, self.log = env, log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, processes: int = 1, threads: int = 1) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "sigforge",
                    "worker",
                    "--processes",
                    str(processes),
                    "--threads",
                    str(threads),
                ],
                env=child_env(**self.env),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while len(worker_children(self.proc.pid)) < processes:
            assert self.proc.poll() is None, f"worker pool exited: {self.log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, "worker processes did not start"
            time.sleep(0.05)

    def kill_workers(self) -> None:
        assert self.proc is not None
        for child in worker_children(self.proc.pid):
            os.kill(child, signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def wait_for(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")
