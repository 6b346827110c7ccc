"""The same small semantic checks on every broker sigforge supports: SQLite, Redis and RabbitMQ.

If a check passes on Redis/RabbitMQ and fails on SQLite, the SQLite broker diverges from Dramatiq's semantics.
Redis and RabbitMQ are skipped when not running locally (and fail under ``CI=true``; see ``services.py``).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq.common import dq_name, xq_name

from realservices import RABBITMQ_URL, REDIS_URL, require_service
from sigforge.worker.brokers.sqlite import SQLiteBroker


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("rabbitmq", marks=pytest.mark.rabbitmq),
    ]
)
def env(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[dramatiq.Broker, str]]:
    """A fresh broker and a queue name unique to this test."""
    kind: str = request.param
    queue = f"conformance_{uuid.uuid4().hex[:10]}"
    broker: dramatiq.Broker
    if kind == "sqlite":
        broker = SQLiteBroker(
            tmp_path / "q.sqlite3", heartbeat_interval_s=0.2, heartbeat_ttl_s=1.5, poll_interval_s=0.02
        )
    elif kind == "redis":
        require_service("redis")
        from dramatiq.brokers.redis import RedisBroker

        broker = RedisBroker(url=REDIS_URL)
        broker.client.flushdb()
    else:
        require_service("rabbitmq")
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        broker = RabbitmqBroker(url=RABBITMQ_URL)
    try:
        yield broker, queue
    finally:
        if kind == "rabbitmq":
            for name in (queue, dq_name(queue), xq_name(queue)):
                with contextlib.suppress(Exception):
                    broker.channel.queue_delete(name)
        broker.close()


@pytest.fixture
def run_worker() -> Iterator[Callable[[dramatiq.Broker], None]]:
    workers: list[dramatiq.Worker] = []

    def start(broker: dramatiq.Broker) -> None:
        worker = dramatiq.Worker(broker, worker_threads=2, worker_timeout=100)
        worker.start()
        workers.append(worker)

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_enqueued_messages_are_consumed_once(env: tuple[dramatiq.Broker, str], run_worker: Any) -> None:
    broker, queue = env
    seen: list[int] = []

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}_record")
    def record(i: int) -> None:
        seen.append(i)

    run_worker(broker)
    for i in range(10):
        record.send(i)
    wait_for(lambda: len(seen) >= 10)
    time.sleep(0.2)
    assert sorted(seen) == list(range(10))


def test_failed_message_is_retried_after_a_backoff(env: tuple[dramatiq.Broker, str], run_worker: Any) -> None:
    broker, queue = env
    attempts: list[float] = []

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}_flaky", min_backoff=200, max_backoff=400)
    def flaky() -> None:
        attempts.append(time.monotonic())
        if len(attempts) == 1:
            raise RuntimeError("first attempt fails")

    run_worker(broker)
    flaky.send()
    wait_for(lambda: len(attempts) >= 2)
    time.sleep(0.3)
    assert len(attempts) == 2
    assert attempts[1] - attempts[0] >= 0.19


def test_delayed_message_waits_until_due(env: tuple[dramatiq.Broker, str], run_worker: Any) -> None:
    broker, queue = env
    ran: list[float] = []

    @dramatiq.actor(broker=broker, queue_name=queue, actor_name=f"{queue}_later")
    def later() -> None:
        ran.append(time.monotonic())

    run_worker(broker)
    sent = time.monotonic()
    message = later.send_with_options(delay=600)
    assert message.queue_name == dq_name(queue) and message.options["eta"] > 0
    time.sleep(0.35)
    assert ran == []
    wait_for(lambda: bool(ran))
    assert ran[0] - sent >= 0.59
    time.sleep(0.1)
    assert len(ran) == 1
