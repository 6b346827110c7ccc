"""SQLiteBroker in one process: a real Dramatiq ``Worker`` (or a bare consumer) on a temporary file."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
from dramatiq import Message
from dramatiq.errors import BrokerConnectionError, QueueJoinTimeout, QueueNotFound

from sigforge.worker.brokers import sqlite as sqlite_broker
from sigforge.worker.brokers import sqlite_store
from sigforge.worker.brokers.sqlite import SQLiteBroker, SQLiteBrokerError

ZERO = {"queued": 0, "delayed": 0, "consumed": 0, "rejected": 0}


def make_broker(path: Path) -> SQLiteBroker:
    return SQLiteBroker(path, heartbeat_interval_s=0.2, heartbeat_ttl_s=1.5, poll_interval_s=0.02)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "queue.sqlite3"


@pytest.fixture
def broker(db: Path) -> Iterator[SQLiteBroker]:
    b = make_broker(db)
    yield b
    b.close()


@pytest.fixture
def start_worker() -> Iterator[Callable[..., dramatiq.Worker]]:
    workers: list[dramatiq.Worker] = []

    def start(broker: SQLiteBroker, threads: int = 2) -> dramatiq.Worker:
        worker = dramatiq.Worker(broker, worker_threads=threads, worker_timeout=100)
        worker.start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def raw_rows(db: Path) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT queue, state, worker_id, delivery FROM broker_messages ORDER BY id").fetchall()


def test_enqueue_consume_ack_runs_each_message_once(broker: SQLiteBroker, db: Path, start_worker: Any) -> None:
    seen: list[int] = []

    @dramatiq.actor(broker=broker)
    def record(i: int) -> None:
        seen.append(i)

    for i in range(25):
        record.send(i)
    assert broker.queue_stats()["default"] == {**ZERO, "queued": 25}
    start_worker(broker)
    broker.join("default", timeout=10_000)
    assert sorted(seen) == list(range(25))
    assert raw_rows(db) == []  # ack deletes
    assert broker.queue_stats() == {"default": ZERO}


def test_claims_in_available_at_order_and_consumer_requeues_prefetch_on_close(broker: SQLiteBroker, db: Path) -> None:
    broker.declare_queue("q")
    ids = [broker.enqueue(Message("q", "a", (i,), {}, {})).message_id for i in range(5)]
    consumer = broker.consume("q", prefetch=5)
    first = next(consumer)
    assert first is not None and first.message_id == ids[0]
    # The whole batch was claimed at once; four wait in the consumer's buffer.
    assert [r[1] for r in raw_rows(db)] == ["consumed"] * 5
    assert [next(consumer).message_id for _ in range(2)] == ids[1:3]  # type: ignore[union-attr]
    consumer.requeue([first])
    consumer.close()  # the regression dramatiq-sqlite fails: requeueing several prefetched messages at once
    assert broker.queue_stats()["q"] == {**ZERO, "queued": 3, "consumed": 2}


def test_messages_survive_close_and_reopen(db: Path, start_worker: Any) -> None:
    first = make_broker(db)
    first.declare_queue("default")
    for i in range(2):
        first.enqueue(Message("default", "record", (i,), {}, {}))
    first.enqueue(Message("default", "record", (99,), {}, {}), delay=60_000)
    first.close()

    second = make_broker(db)
    try:
        assert second.queue_stats()["default"] == {**ZERO, "queued": 2, "delayed": 1}
        seen: list[int] = []

        @dramatiq.actor(broker=second)
        def record(i: int) -> None:
            seen.append(i)

        worker = start_worker(second)
        wait_for(lambda: len(seen) == 2)
        time.sleep(0.2)
        assert sorted(seen) == [0, 1]
        assert second.queue_stats()["default"] == {**ZERO, "delayed": 1}
        worker.stop()
    finally:
        second.close()


def test_delayed_message_is_held_in_the_database_until_due(broker: SQLiteBroker, db: Path, start_worker: Any) -> None:
    ran: list[float] = []

    @dramatiq.actor(broker=broker)
    def later() -> None:
        ran.append(time.monotonic())

    start_worker(broker)
    sent = time.monotonic()
    message = later.send_with_options(delay=700)
    assert message.queue_name == "default.DQ" and "eta" in message.options
    time.sleep(0.45)
    assert ran == []
    assert raw_rows(db)[0][:2] == ("default.DQ", "queued")  # not claimed into a worker's memory
    wait_for(lambda: bool(ran), 5)
    assert ran[0] - sent >= 0.69


def test_delayed_message_survives_worker_restart(db: Path, start_worker: Any) -> None:
    first = make_broker(db)

    @dramatiq.actor(broker=first, actor_name="later")
    def later_1() -> None:
        raise AssertionError("the first worker must be gone before this is due")

    worker = start_worker(first)
    later_1.send_with_options(delay=800)
    time.sleep(0.2)
    worker.stop()
    first.close()
    assert make_broker(db).queue_stats()["default"] == {**ZERO, "delayed": 1}

    second = make_broker(db)
    ran = threading.Event()

    @dramatiq.actor(broker=second, actor_name="later")
    def later_2() -> None:
        ran.set()

    try:
        worker = start_worker(second)
        assert ran.wait(5)
        second.join("default", timeout=2000)
        worker.stop()
    finally:
        second.close()


def test_retries_back_off_exponentially_then_dead_letter(broker: SQLiteBroker, start_worker: Any) -> None:
    attempts: list[float] = []

    @dramatiq.actor(broker=broker, max_retries=2, min_backoff=150, max_backoff=5000)
    def doomed() -> None:
        attempts.append(time.monotonic())
        raise RuntimeError("boom")

    start_worker(broker)
    message = doomed.send()
    broker.join("default", timeout=10_000)
    assert len(attempts) == 3
    # Retries' backoff: 150 ms x [1, 2) then 300 ms x [1, 2).
    assert attempts[1] - attempts[0] >= 0.14
    assert attempts[2] - attempts[1] >= 0.29
    (dead,) = broker.dead_letters()
    assert dead.message_id == message.message_id and dead.queue_name == "default"
    assert dead.options["retries"] == 3 and "RuntimeError: boom" in dead.options["traceback"]
    assert dead.options["dead_letter_error"] == "RuntimeError: boom"
    assert broker.queue_stats()["default"] == {**ZERO, "rejected": 1}


def test_dead_letters_can_be_listed_retried_and_purged(broker: SQLiteBroker, start_worker: Any) -> None:
    failing = {"on": True}
    ok: list[str] = []

    @dramatiq.actor(broker=broker, queue_name="q1", max_retries=0)
    def one(tag: str) -> None:
        if failing["on"]:
            raise ValueError(tag)
        ok.append(tag)

    @dramatiq.actor(broker=broker, queue_name="q2", max_retries=0)
    def two(tag: str) -> None:
        raise ValueError(tag)

    sent = [one.send("a"), one.send("b"), two.send("c")]
    start_worker(broker)
    for queue in ("q1", "q2"):
        broker.join(queue, timeout=5000)
    assert {m.message_id for m in broker.dead_letters("q1")} == {m.message_id for m in sent[:2]}
    assert len(broker.dead_letters()) == 3 and len(broker.dead_letters(limit=1)) == 1
    assert broker.dead_letters("q2")[0].options["dead_letter_error"] == "ValueError: c"

    failing["on"] = False
    assert broker.retry_dead_letter(sent[0].message_id)
    broker.join("q1", timeout=5000)
    assert ok == ["a"]
    assert not broker.retry_dead_letter(sent[0].message_id)  # done, no longer a dead letter
    assert not broker.retry_dead_letter("no-such-id")

    assert broker.purge_dead_letters("q2") == 1
    assert broker.purge_dead_letters() == 1
    assert broker.dead_letters() == []
    assert broker.queue_stats() == {"q1": ZERO, "q2": ZERO}


def test_reaper_requeues_a_dead_workers_messages_but_not_a_live_ones(db: Path) -> None:
    a, b = make_broker(db), make_broker(db)
    try:
        for x in (a, b):
            x.declare_queue("q")
        a.enqueue(Message("q", "a", (1,), {}, {}))
        a.enqueue(Message("q", "a", (2,), {}, {}))
        held_by_a = next(a.consume("q", prefetch=1))
        consumer_b = b.consume("q", prefetch=1)
        held_by_b = next(consumer_b)
        assert held_by_a is not None and held_by_b is not None

        a._liveness.stop()  # "crash": a's heartbeat stops, nothing is cleaned up
        wait_for(lambda: a.queue_stats()["q"]["queued"] == 1, 5)  # ttl 1.5 s of b's monotonic clock
        time.sleep(0.5)
        # b held its message for longer than the TTL too, but b is alive: not reaped.
        assert a.queue_stats()["q"] == {**ZERO, "queued": 1, "consumed": 1}

        consumer_b.ack(held_by_b)
        redelivered = next(consumer_b) or next(consumer_b)
        assert redelivered is not None and redelivered.message_id == held_by_a.message_id
        a.consume("q").ack(held_by_a)  # the presumed-dead worker's late ack must not delete b's claim
        assert a.queue_stats()["q"] == {**ZERO, "consumed": 1}
        consumer_b.ack(redelivered)
        assert a.queue_stats()["q"] == ZERO
    finally:
        a.close()
        b.close()


def test_graceful_worker_stop_requeues_unstarted_messages(broker: SQLiteBroker, start_worker: Any) -> None:
    done: list[int] = []
    started = threading.Event()

    @dramatiq.actor(broker=broker)
    def slowish(i: int) -> None:
        started.set()
        time.sleep(0.3)
        done.append(i)

    for i in range(6):
        slowish.send(i)
    worker = start_worker(broker, threads=1)  # prefetch 2: one running, one waiting in memory
    assert started.wait(5)
    worker.stop()
    stats = broker.queue_stats()["default"]
    assert stats["consumed"] == 0
    assert stats["queued"] == 6 - len(done) >= 4


def test_undecodable_message_is_dead_lettered(broker: SQLiteBroker, db: Path) -> None:
    broker.declare_queue("q")
    with sqlite3.connect(db) as conn:
        conn.execute(
            "INSERT INTO broker_messages (message_id, queue, state, available_at, enqueued_at, updated_at, payload)"
            " VALUES ('bad', 'q', 'queued', 0, 0, 0, x'00ff')"
        )
    consumer = broker.consume("q")
    assert next(consumer) is None
    assert broker.queue_stats()["q"] == {**ZERO, "rejected": 1}
    assert raw_rows(db)[0][1] == "rejected"
    (dead,) = broker.dead_letters("q")  # listable, so an operator can see it...
    assert dead.message_id == "bad" and dead.options["undecodable"]
    assert dead.options["dead_letter_error"].startswith("DecodeError")
    assert not broker.retry_dead_letter("bad")  # ...not retryable...
    assert broker.purge_dead_letters("q") == 1  # ...and purgeable


def test_join_flush_and_declared_queues(broker: SQLiteBroker) -> None:
    @dramatiq.actor(broker=broker, queue_name="q")
    def noop() -> None:
        pass

    assert broker.get_declared_queues() == {"q"}
    assert broker.get_declared_delay_queues() == {"q.DQ"}
    noop.send()
    noop.send_with_options(delay=60_000)
    with pytest.raises(QueueJoinTimeout):
        broker.join("q", timeout=150)
    broker.flush("q")
    broker.join("q", timeout=1000)
    noop.send()
    broker.enqueue(Message("other", "noop", (), {}, {}))
    broker.flush_all()
    assert broker.queue_stats() == {"q": ZERO}
    with pytest.raises(QueueNotFound):
        broker.consume("undeclared")


def test_ping_and_unusable_databases(broker: SQLiteBroker, tmp_path: Path) -> None:
    broker.ping()
    with pytest.raises(SQLiteBrokerError):
        SQLiteBroker(tmp_path)  # a directory
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"this is not a database" * 100)
    with pytest.raises(SQLiteBrokerError):
        SQLiteBroker(garbage)


def test_locked_database_surfaces_as_a_dramatiq_connection_error(db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_broker, "BUSY_TIMEOUT_S", 0.1)
    b = make_broker(db)
    b.declare_queue("q")
    blocker = sqlite3.connect(db, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        # Dramatiq retries acks and restarts consumers on BrokerConnectionError instead of dropping work.
        with pytest.raises(BrokerConnectionError):
            b.enqueue(Message("q", "a", (), {}, {}))
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
        b.close()


def fast_broker(path: Path, **kwargs: Any) -> SQLiteBroker:
    """A broker whose reaper declares a silent worker dead within ~0.2 s; no middleware, so that a test can
    emit ``before_process_message`` itself, as Dramatiq's worker does before running a message."""
    return SQLiteBroker(
        path, heartbeat_interval_s=0.05, heartbeat_ttl_s=0.15, poll_interval_s=0.02, middleware=[], **kwargs
    )


def abandoned(db: Path) -> dict[str, tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT message_id, state, abandoned FROM broker_messages").fetchall()
    return {str(m): (str(state), int(n)) for m, state, n in rows}


def crash_holding(db: Path, **kwargs: Any) -> tuple[SQLiteBroker, list[dramatiq.broker.MessageProxy]]:
    """A worker that claims everything due (prefetch 2), starts the first message, then "dies" (its heartbeat
    stops, nothing is cleaned up). Returns it (close it at the end) and the messages it held, started first."""
    victim = fast_broker(db, **kwargs)
    victim.declare_queue("q")
    consumer = victim.consume("q", prefetch=2)
    first = next(consumer)
    assert first is not None
    victim.emit_before("process_message", first)  # what Dramatiq's worker thread does before running it
    held = [first, *consumer._buffer]  # type: ignore[attr-defined]
    victim._liveness.stop()
    return victim, held


def test_message_abandoned_by_dead_workers_max_deliveries_times_is_dead_lettered(db: Path) -> None:
    reaper = fast_broker(db, max_deliveries=3)
    reaper.declare_queue("q")
    poison = reaper.enqueue(Message("q", "a", ("poison",), {}, {})).message_id
    bystander = reaper.enqueue(Message("q", "a", ("bystander",), {}, {})).message_id
    reaper._liveness.ensure_running()
    victims = []
    try:
        for round_ in range(1, 4):
            victim, held = crash_holding(db, max_deliveries=3)
            victims.append(victim)
            assert [m.message_id for m in held] == [poison, bystander]  # the bystander was only prefetched
            wait_for(lambda: reaper.queue_stats()["q"]["consumed"] == 0, 5)
            if round_ < 3:
                # Each death counts against the message that was running; the prefetched one only got the
                # strike every first abandonment gets (nothing told it apart yet).
                assert abandoned(db) == {poison: ("queued", round_), bystander: ("queued", 1)}
        assert abandoned(db) == {poison: ("rejected", 3), bystander: ("queued", 1)}
        (dead,) = reaper.dead_letters("q")
        assert dead.message_id == poison and dead.args == ("poison",)
        assert dead.options["dead_letter_error"] == "abandoned by a dead worker 3 times (max_deliveries=3)"
        assert reaper.queue_stats()["q"] == {**ZERO, "queued": 1, "rejected": 1}

        # The bystander is delivered normally; a retried dead letter starts again from zero.
        consumer = reaper.consume("q")
        message = next(consumer)
        assert message is not None and message.message_id == bystander
        consumer.ack(message)
        assert reaper.retry_dead_letter(poison)
        assert abandoned(db) == {poison: ("queued", 0)}
    finally:
        for b in [*victims, reaper]:
            b.close()


def test_unlimited_deliveries_and_graceful_requeues_do_not_count(db: Path) -> None:
    reaper = fast_broker(db, max_deliveries=None)
    reaper.declare_queue("q")
    poison = reaper.enqueue(Message("q", "a", (), {}, {})).message_id
    reaper._liveness.ensure_running()
    victims = []
    try:
        for _ in range(3):
            victim, _held = crash_holding(db, max_deliveries=None)  # no limit: no `started` marks either
            victims.append(victim)
            wait_for(lambda: reaper.queue_stats()["q"]["consumed"] == 0, 5)
        assert abandoned(db) == {poison: ("queued", 1)}
        assert reaper.dead_letters() == []

        # Prefetched then handed back gracefully (consumer close, Dramatiq's requeue, broker close): no strike.
        for how in ("close", "requeue", "retire"):
            b = fast_broker(db, max_deliveries=1)
            b.declare_queue("q")
            consumer = b.consume("q", prefetch=1)
            message = next(consumer)
            assert message is not None
            if how == "requeue":
                consumer.requeue([message])
            elif how == "close":
                consumer._buffer.appendleft(message)  # type: ignore[attr-defined]
                consumer.close()
            b.close()
            assert abandoned(db) == {poison: ("queued", 1)}, how
    finally:
        for b in [*victims, reaper]:
            b.close()


def test_schema_v1_database_is_migrated_in_place(db: Path) -> None:
    v1 = sqlite_store._SCHEMA.replace("    abandoned     INTEGER NOT NULL DEFAULT 0,\n", "").replace(
        "    started       INTEGER NOT NULL DEFAULT 0,\n", ""
    )
    assert "abandoned" not in v1 and " started " not in v1
    with sqlite3.connect(db) as conn:
        conn.executescript(v1)
        conn.execute(
            "INSERT INTO broker_messages (message_id, queue, state, available_at, enqueued_at, updated_at, payload)"
            " VALUES ('old', 'q', 'queued', 0, 0, 0, ?)",
            (Message("q", "a", (1,), {}, {}, message_id="old").encode(),),
        )
        conn.execute("PRAGMA user_version = 1")
    conn.close()
    b = make_broker(db)
    try:
        b.declare_queue("q")
        consumer = b.consume("q")
        message = next(consumer)
        assert message is not None and message.message_id == "old"
        consumer.ack(message)
        assert b.store.connection().execute("PRAGMA user_version").fetchone() == (sqlite_store.SCHEMA_VERSION,)
        make_broker(db).close()  # a second opener finds it current
    finally:
        b.close()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"heartbeat_interval_s": 1.0, "heartbeat_ttl_s": 1.5},
        {"poll_interval_s": 0},
        {"synchronous": "OFF"},
        {"max_deliveries": 0},
        {"max_deliveries": -1},
        {"max_deliveries": 2.5},
        {"max_deliveries": True},
    ],
)
def test_rejects_unsafe_settings(db: Path, kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        SQLiteBroker(db, **kwargs)


def test_synchronous_full_is_applied(db: Path) -> None:
    b = SQLiteBroker(db, synchronous="FULL")
    try:
        assert b.store.connection().execute("PRAGMA synchronous").fetchone() == (2,)
        assert b.store.connection().execute("PRAGMA journal_mode").fetchone() == ("wal",)
    finally:
        b.close()
