"""Actors for the SQLite broker's subprocess tests (``python -m dramatiq tests.worker.broker_actors``).

Configured through the environment, since Dramatiq's CLI imports this module in each worker process:

- ``SFTEST_BROKER_DB``: broker database file; ``SFTEST_BROKER_OUT``: directory for the journal files;
- ``SFTEST_HB_INTERVAL`` / ``SFTEST_HB_TTL``: heartbeat interval and TTL in seconds.

Every actor appends ``<event> <key> <pid>`` lines to ``<out>/<pid>.log`` with one O_APPEND write each, so a
SIGKILL never leaves a torn line and the test can count starts and completions per message.
"""

from __future__ import annotations

import os
import time

import dramatiq

from sigforge.worker.brokers.sqlite import SQLiteBroker

QUEUE = "sftest"

OUT = os.environ["SFTEST_BROKER_OUT"]
broker = SQLiteBroker(
    os.environ["SFTEST_BROKER_DB"],
    heartbeat_interval_s=float(os.environ.get("SFTEST_HB_INTERVAL", "0.2")),
    heartbeat_ttl_s=float(os.environ.get("SFTEST_HB_TTL", "1.5")),
    poll_interval_s=0.05,
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
