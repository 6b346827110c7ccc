"""Actors for the SQLite broker's subprocess tests (``python -m dramatiq tests.worker.broker_actors``).

Configured through the environment, since Dramatiq's CLI imports this module in each worker process:

- ``SFTEST_BROKER_DB``: broker database file; ``SFTEST_BROKER_OUT``: directory for the journal files;
- ``SFTEST_HB_INTERVAL`` / ``SFTEST_HB_TTL``: heartbeat interval and TTL in seconds;
- ``SFTEST_MAX_DELIVERIES``: the broker's ``max_deliveries`` (its default when unset, ``none`` for None).

``python tests/worker/broker_actors.py THREADS`` is a respawning worker: the parent imports this module once and
forks a one-process Dramatiq worker, and another each time the last one dies (e.g. by the ``suicide`` actor),
until SIGTERM. Much faster than restarting Dramatiq's CLI, whose master exits when its worker dies.

Every actor appends ``<event> <key> <pid>`` lines to ``<out>/<pid>.log`` with one O_APPEND write each, so a
SIGKILL never leaves a torn line and the test can count starts and completions per message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

import dramatiq

from sigforge.worker.brokers.sqlite import SQLiteBroker

QUEUE = "sftest"

OUT = os.environ["SFTEST_BROKER_OUT"]
_options: dict[str, Any] = {}
if "SFTEST_MAX_DELIVERIES" in os.environ:
    raw = os.environ["SFTEST_MAX_DELIVERIES"]
    _options["max_deliveries"] = None if raw == "none" else int(raw)
broker = SQLiteBroker(
    os.environ["SFTEST_BROKER_DB"],
    heartbeat_interval_s=float(os.environ.get("SFTEST_HB_INTERVAL", "0.2")),
    heartbeat_ttl_s=float(os.environ.get("SFTEST_HB_TTL", "1.5")),
    poll_interval_s=0.05,
    **_options,
)
dramatiq.set_broker(broker)

_fds: dict[int, int] = {}


def journal(event: str, key: str) -> None:
    pid = os.getpid()
    fd = _fds.get(pid)
    if fd is None:
        fd = _fds[pid] = os.open(os.path.join(OUT, f"{pid}.log"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    os.write(fd, f"{event} {key} {pid}\n".encode())


@dramatiq.actor(queue_name=QUEUE, max_retries=0, time_limit=600_000)
def slow(key: str, seconds: float) -> None:
    journal("start", key)
    time.sleep(seconds)
    journal("done", key)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def quick(key: str) -> None:
    journal("start", key)
    journal("done", key)


@dramatiq.actor(queue_name=QUEUE, max_retries=0)
def suicide(key: str) -> None:
    """A poison message: kills its own worker process every time it runs."""
    journal("start", key)
    os.kill(os.getpid(), signal.SIGKILL)


def _respawn(threads: int) -> None:
    stopping = False
    child = 0

    def on_term(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGTERM)

    signal.signal(signal.SIGTERM, on_term)
    parent = os.getpid()
    while not stopping:
        child = os.fork()
        if child == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
            worker.start()
            stop: list[int] = []
            signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
            while not stop and os.getppid() == parent:  # never outlive the parent
                time.sleep(0.02)
            worker.stop()
            broker.close()
            os._exit(0)
        os.waitpid(child, 0)


if __name__ == "__main__":
    _respawn(int(sys.argv[1]))
