"""A Dramatiq broker on one SQLite file: durable, at-least-once, no server.

This module is the public broker; SQL lives in :mod:`.sqlite_store`, consumers in
:mod:`.sqlite_consumer`, the heartbeat/reaper thread in :mod:`.sqlite_liveness`.

Message states (table ``broker_messages``, one row per Dramatiq message id)::

    enqueue ──> queued ──claim──> consumed ──ack──> (row deleted)
                  ^  ^               │ │
                  │  └── requeue ────┘ └──nack──> rejected ──retry_dead_letter──> queued
                  └── reaper (holder declared dead; to ``rejected`` instead at ``max_deliveries`` such deaths)

* ``enqueue`` inserts ``queued`` with ``available_at`` = now, or = ``eta`` for a delayed message,
  which goes to Dramatiq's delay queue ``<queue>.DQ`` (so ``send_with_options(delay=...)`` and the
  Retries middleware's backoff work unchanged). Re-enqueueing an existing message id (what Retries
  does) resets that row. Delayed rows stay in the database until due: the consumer of ``<queue>``
  claims due rows of both ``<queue>`` and ``<queue>.DQ`` (the ``.DQ`` consumer Dramatiq starts yields
  nothing), so a delayed job is never held only in a worker's memory and survives any restart.
* A claim (``BEGIN IMMEDIATE``; oldest ``available_at`` first; at most the free prefetch) sets
  ``consumed`` and the worker id, and bumps ``delivery``. ``(row id, delivery)`` is the claim token:
  ack, nack and requeue touch the row only while it still holds that exact claim by this worker, so a
  late ack from a worker presumed dead, or the ack that follows a Retries re-enqueue, changes nothing.
* ``nack`` is the dead letter: the row stays, ``rejected``, with the updated payload (retries,
  traceback) and a one-line ``error``; ``dead_letters``, ``retry_dead_letter`` and
  ``purge_dead_letters`` manage them.
* Graceful shutdown requeues prefetched-but-unstarted messages; ``close()`` requeues anything this
  worker still holds and deletes its liveness row.
* Poison messages: ``abandoned`` counts the deliveries whose worker died while running the message. When the
  reaper takes a row back from a dead holder it adds one if the holder had started it (``started``) or if the
  row had never been abandoned before (``started`` is written, one short transaction when Dramatiq begins
  processing, only for rows already abandoned, so the first abandonment cannot tell a running message from
  one merely prefetched with it); a row reaching ``max_deliveries`` goes to ``rejected`` with the error
  ``abandoned by a dead worker N times (max_deliveries=N)`` instead of back to ``queued``. Graceful requeues
  (shutdown, consumer close) and ``close()``'s requeue never count; a Retries re-enqueue keeps the count;
  ``retry_dead_letter`` resets it. Messages running *beside* a poison message in the same process die with
  it and are counted too: the database cannot tell which thread killed the process.

Heartbeat / reaper contract (table ``broker_workers``):

* A worker id is per process (``<pid>-<uuid>``). An ``os.register_at_fork`` hook gives a forked child
  a new id, new locks, no heartbeat thread, and abandons the parent's connections (Dramatiq's CLI
  forks its worker processes).
* Before every claim the consuming process ensures its heartbeat thread runs (a synchronous first beat,
  then the thread), and the claim transaction itself upserts the liveness row. So every ``consumed``
  row belongs to a worker whose liveness row was fresh when the claim committed, in a process that has
  a heartbeat thread.
* The thread bumps the row's ``seq`` every ``heartbeat_interval_s`` whether or not a job runs: a job
  that runs far longer than ``heartbeat_ttl_s`` is never redelivered while its process lives.
* Each heartbeat thread also reaps. It declares a peer dead once the peer's ``seq`` has not changed
  for ``heartbeat_ttl_s`` of the *reaper's own* monotonic clock (so wall-clock jumps, and time spent
  waiting for the write lock, never kill a live worker), deletes its row and, in the same
  transaction, requeues every ``consumed`` row whose worker has no liveness row (dead-letters it instead when
  that makes ``max_deliveries`` abandonments; see "Poison messages").
* A worker merely stalled that long (SIGSTOP, swap storm) finds its row gone on its next beat, logs
  it and re-registers; its stale acks are no-ops and its jobs may run twice: at-least-once.

Schema version 2 (v1 files gain the ``abandoned``/``started`` columns in place on first open); a process of an
older sigforge refuses a file of a newer schema, so upgrade every process sharing the file together.

Durability: WAL. ``synchronous=NORMAL`` survives process crashes (a power cut may lose the last
commits, never corrupts); ``FULL`` also survives power cuts at the price of an fsync per commit.
"""

from __future__ import annotations

import functools
import os
import threading
import time
import weakref
from typing import Any, Literal

from dramatiq.broker import Broker, Consumer
from dramatiq.common import current_millis, dq_name, q_name
from dramatiq.errors import DecodeError, QueueJoinTimeout, QueueNotFound
from dramatiq.message import Message

from sigforge.worker.brokers.sqlite_consumer import DelayQueueConsumer, SQLiteConsumer
from sigforge.worker.brokers.sqlite_liveness import Liveness
from sigforge.worker.brokers.sqlite_store import CONSUMED, QUEUED, REJECTED, SQLiteBrokerError, Store

__all__ = ["SQLiteBroker", "SQLiteBrokerError"]

#: ``queue_stats()`` keys: the row states, with ``queued`` rows not yet due counted as ``delayed``.
STAT_KEYS = (QUEUED, "delayed", CONSUMED, REJECTED)

#: How long a statement waits for another writer's lock (all transactions here are a few milliseconds).
BUSY_TIMEOUT_S = 30.0


def _before_fork(ref: weakref.ReferenceType[SQLiteBroker]) -> None:
    broker = ref()
    if broker is not None:
        broker._fork_liveness = broker._liveness
        broker._fork_liveness.before_fork()


def _after_fork_in_parent(ref: weakref.ReferenceType[SQLiteBroker]) -> None:
    broker = ref()
    if broker is not None and broker._fork_liveness is not None:
        broker._fork_liveness.after_fork_in_parent()
        broker._fork_liveness = None


def _after_fork_in_child(ref: weakref.ReferenceType[SQLiteBroker]) -> None:
    broker = ref()
    if broker is not None:
        broker._reset_after_fork()


class SQLiteBroker(Broker):
    """Dramatiq broker storing its queues in an SQLite database file.

    Args:
        path: Database file (created if missing). Every process using the same queues must use the same file
            on a local filesystem (SQLite locking is unreliable on network filesystems).
        heartbeat_interval_s: Seconds between a worker process's heartbeats (and reaper passes).
        heartbeat_ttl_s: Visibility timeout: a worker whose heartbeat stands still this long is
            presumed dead and its messages are requeued. At least twice the interval.
        poll_interval_s: Longest a consumer idles before looking for due messages again (an enqueue
            in the same process, or a freed prefetch slot, wakes it at once).
        synchronous: ``PRAGMA synchronous``: ``NORMAL`` or ``FULL`` (power-cut safe, slower).
        max_deliveries: A message whose worker died while running it this many times (segfault, OOM kill,
            SIGKILL) is dead-lettered by the reaper instead of being redelivered forever; None for no limit.
            With 1, a worker's death also dead-letters the messages it had merely prefetched (see module docs).
        middleware: Dramatiq middleware; Dramatiq's defaults when None.

    Raises:
        ValueError: On a non-positive interval, a TTL under twice the interval, or ``max_deliveries`` < 1.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        heartbeat_interval_s: float = 5.0,
        heartbeat_ttl_s: float = 30.0,
        poll_interval_s: float = 0.1,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        max_deliveries: int | None = 5,
        middleware: list[Any] | None = None,
    ) -> None:
        if heartbeat_interval_s <= 0 or poll_interval_s <= 0:
            raise ValueError("heartbeat_interval_s and poll_interval_s must be positive")
        if heartbeat_ttl_s < 2 * heartbeat_interval_s:
            raise ValueError("heartbeat_ttl_s must be at least twice heartbeat_interval_s")
        if synchronous not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', not {synchronous!r}")
        if max_deliveries is not None and (
            isinstance(max_deliveries, bool) or not isinstance(max_deliveries, int) or max_deliveries < 1
        ):
            raise ValueError(f"max_deliveries must be a positive integer or None, not {max_deliveries!r}")
        super().__init__(middleware=middleware)
        self.path = os.fspath(path)
        self.heartbeat_interval_s = heartbeat_interval_s
        self.heartbeat_ttl_s = heartbeat_ttl_s
        self.poll_interval_s = poll_interval_s
        self.max_deliveries = max_deliveries
        self.queues: set[str] = set()
        self.store = Store(path, synchronous=synchronous, busy_timeout_s=BUSY_TIMEOUT_S)
        self._init_process_state()
        self._fork_liveness: Liveness | None = None
        # Weak references, so the (permanent) fork hooks do not keep closed brokers alive.
        ref = weakref.ref(self)
        os.register_at_fork(
            before=functools.partial(_before_fork, ref),
            after_in_parent=functools.partial(_after_fork_in_parent, ref),
            after_in_child=functools.partial(_after_fork_in_child, ref),
        )
        self.store.connection()  # fail fast on a bad path; creates the schema

    def _init_process_state(self) -> None:
        self._lock = threading.Lock()
        self._liveness = self._new_liveness()
        self._wakeups: dict[str, set[threading.Event]] = {}

    def _new_liveness(self) -> Liveness:
        return Liveness(
            self.store,
            interval_s=self.heartbeat_interval_s,
            ttl_s=self.heartbeat_ttl_s,
            max_deliveries=self.max_deliveries,
        )

    def _reset_after_fork(self) -> None:
        # Runs in the child right after fork, while only the forking thread exists: every lock may have been
        # held by a vanished thread, the heartbeat thread did not survive, and the parent's id and
        # connections are the parent's. Replace them all; the child's first claim starts its own heartbeat.
        self.store.reset_after_fork()
        self._init_process_state()
        self._fork_liveness = None

    @property
    def worker_id(self) -> str:
        """This process's worker id (changes in a forked child)."""
        return self._liveness.worker_id

    # -- Dramatiq Broker API ---------------------------------------------------------------------------------

    def consume(self, queue_name: str, prefetch: int = 1, timeout: int = 30000) -> Consumer:
        """Create a consumer for a declared queue.

        Args:
            queue_name: A declared queue, or its delay queue (whose consumer yields nothing; see module docs).
            prefetch: Most messages the consumer holds at once.
            timeout: Dramatiq's idle timeout in milliseconds (bounds the delay-queue consumer's idle wait).

        Returns:
            The consumer.

        Raises:
            QueueNotFound: If the queue was never declared.
        """
        if queue_name in self.delay_queues:
            return DelayQueueConsumer(idle_s=min(timeout / 1000, 1.0))
        if queue_name not in self.queues:
            raise QueueNotFound(queue_name)  # type: ignore[no-untyped-call]
        wakeup = threading.Event()
        with self._lock:
            self._wakeups.setdefault(queue_name, set()).add(wakeup)
        # A consuming process beats from the start, not only from its first message.
        self._liveness.ensure_running()
        return SQLiteConsumer(
            self.store,
            liveness=lambda: self._liveness,  # looked up each time: a fork or close() replaces it
            queue_name=queue_name,
            prefetch=prefetch,
            poll_interval_s=self.poll_interval_s,
            wakeup=wakeup,
            unregister=functools.partial(self._unregister_wakeup, queue_name, wakeup),
        )

    def emit_before(self, signal: str, *args: Any, **kwargs: Any) -> None:
        """Dramatiq's middleware hook, plus: a message about to run that was abandoned before gets ``started``.

        Only such suspects pay the write (see "Poison messages" in the module docs). A failed write is logged
        and the message runs anyway: without the mark, a death while running it is merely not counted.
        """
        if signal == "process_message" and args and self.max_deliveries is not None:
            proxy = args[0]
            token: tuple[int, int] | None = getattr(proxy, "sqlite_token", None)
            if token is not None and getattr(proxy, "sqlite_abandoned", 0) > 0:
                try:
                    self.store.mark_started(token[0], token[1], self._liveness.worker_id)
                except SQLiteBrokerError as exc:
                    self.logger.warning("Could not mark message %s as started: %s", proxy.message_id, exc)
        super().emit_before(signal, *args, **kwargs)

    def _unregister_wakeup(self, queue_name: str, wakeup: threading.Event) -> None:
        with self._lock:
            self._wakeups.get(queue_name, set()).discard(wakeup)

    def declare_queue(self, queue_name: str) -> None:
        """Declare ``queue_name`` and its delay queue (idempotent; queues need no DDL)."""
        if queue_name in self.queues:
            return
        self.emit_before("declare_queue", queue_name)
        self.queues.add(queue_name)
        self.emit_after("declare_queue", queue_name)
        delayed = dq_name(queue_name)
        self.delay_queues.add(delayed)
        self.emit_after("declare_delay_queue", delayed)

    def enqueue(self, message: Message[Any], *, delay: int | None = None) -> Message[Any]:
        """Store a message; with ``delay`` (ms) it goes to the delay queue, due at its ``eta``.

        Args:
            message: The message. Enqueueing a message id that is already stored resets that row.
            delay: Milliseconds to wait before delivery.

        Returns:
            The message as stored (a delay-queue copy with an ``eta`` option when delayed).
        """
        if delay is not None:
            message = message.copy(queue_name=dq_name(message.queue_name), options={"eta": current_millis() + delay})
        self.emit_before("enqueue", message, delay)
        eta = message.options.get("eta")
        available_at = int(eta) if isinstance(eta, int | float) else current_millis()
        self.store.put(message.message_id, message.queue_name, available_at, message.encode())
        if delay is None:
            with self._lock:
                wakeups = list(self._wakeups.get(q_name(message.queue_name), ()))
            for wakeup in wakeups:
                wakeup.set()
        self.emit_after("enqueue", message, delay)
        return message

    def get_declared_queues(self) -> set[str]:
        """Names of the queues declared in this process."""
        return self.queues.copy()

    def get_declared_delay_queues(self) -> set[str]:
        """Names of the delay queues declared in this process."""
        return self.delay_queues.copy()

    def flush(self, queue_name: str) -> None:
        """Delete every message of a queue and of its delay queue, dead letters included."""
        canonical = q_name(queue_name)
        self.store.delete_queues((canonical, dq_name(canonical)))

    def flush_all(self) -> None:
        """Delete every message in the database (declared here or not: the file is the broker)."""
        self.store.delete_queues(None)

    def join(self, queue_name: str, *, interval: int = 100, timeout: int | None = None) -> None:
        """Wait until a queue and its delay queue hold no queued, delayed or in-flight message.

        Args:
            queue_name: The queue.
            interval: Milliseconds between checks.
            timeout: Milliseconds to wait at most; forever when None.

        Raises:
            QueueJoinTimeout: When the timeout elapses first.
        """
        canonical = q_name(queue_name)
        deadline = None if timeout is None else time.monotonic() + timeout / 1000
        while self.store.pending((canonical, dq_name(canonical))):
            if deadline is not None and time.monotonic() >= deadline:
                raise QueueJoinTimeout(queue_name)  # type: ignore[no-untyped-call]
            time.sleep(interval / 1000)

    def close(self) -> None:
        """Stop the heartbeat, requeue whatever this process still holds, and close its connections.

        Call it after the Dramatiq ``Worker`` has stopped (the CLI does): a job still running then (past the
        shutdown timeout) is requeued at once rather than after the TTL. The broker stays usable; connections
        reopen on demand.
        """
        liveness = self._liveness
        liveness.stop()
        try:
            if liveness.pid == os.getpid():
                requeued = self.store.retire(liveness.worker_id)
                if requeued:
                    self.logger.warning("close(): requeued %d message(s) still held by this worker.", requeued)
        finally:
            self.store.close()
            with self._lock:
                self._liveness = self._new_liveness()

    # -- operations API (dead letters, stats, readiness) -----------------------------------------------------

    def dead_letters(self, queue_name: str | None = None, limit: int = 100) -> list[Message[Any]]:
        """Dead-lettered messages, most recently rejected first.

        Args:
            queue_name: Only this queue (and its delay queue); all queues when None.
            limit: At most this many.

        Returns:
            The messages as rejected (options carry ``retries`` and ``traceback`` when Retries gave up); each
            message's ``options["dead_letter_error"]`` is the stored one-line failure. A payload that
            does not decode is listed as an empty message with ``options["undecodable"]``.
        """
        queues = None if queue_name is None else (q_name(queue_name), dq_name(q_name(queue_name)))
        out = []
        for row in self.store.dead_letters(queues, limit):
            try:
                message = Message.decode(row.payload)
            except DecodeError:
                # Listed anyway (an operator must be able to see and purge it), as an empty message.
                message = Message(q_name(row.queue), "", (), {}, {"undecodable": True}, message_id=row.message_id)
            out.append(message.copy(options={"dead_letter_error": row.error}))
        return out

    def retry_dead_letter(self, message_id: str) -> bool:
        """Requeue a dead letter on its canonical queue, due now, with a fresh retry budget.

        The ``retries``, ``traceback`` and ``eta`` options are dropped, so the Retries middleware treats it as
        a new message.

        Args:
            message_id: The Dramatiq message id.

        Returns:
            True if a rejected message with that id was requeued; False if there is none, or if its
            payload does not decode (purge it instead).
        """
        row = self.store.dead_letter(message_id)
        if row is None:
            return False
        try:
            message = Message.decode(row.payload)
        except DecodeError:
            return False
        queue = q_name(row.queue)
        options = {k: v for k, v in message.options.items() if k not in ("retries", "traceback", "eta")}
        revived: Message[Any] = Message(
            queue_name=queue,
            actor_name=message.actor_name,
            args=message.args,
            kwargs=message.kwargs,
            options=options,
            message_id=message.message_id,
            message_timestamp=message.message_timestamp,
        )
        if not self.store.revive(row.row_id, queue, revived.encode()):
            return False
        with self._lock:
            wakeups = list(self._wakeups.get(queue, ()))
        for wakeup in wakeups:
            wakeup.set()
        return True

    def purge_dead_letters(self, queue_name: str | None = None) -> int:
        """Delete dead letters of one queue (and its delay queue), or of all queues.

        Returns:
            How many were deleted.
        """
        queues = None if queue_name is None else (q_name(queue_name), dq_name(q_name(queue_name)))
        return self.store.purge_rejected(queues)

    def queue_stats(self) -> dict[str, dict[str, int]]:
        """Message counts per canonical queue (delay queue folded in) per state.

        Returns:
            ``{queue: {"queued": due, "delayed": not yet due, "consumed": in flight, "rejected": dead}}``,
            including every declared queue and every queue that has rows.
        """
        stats = {queue: dict.fromkeys(STAT_KEYS, 0) for queue in self.queues}
        for queue, state, due, count in self.store.counts(current_millis()):
            key = "delayed" if state == QUEUED and not due else state
            stats.setdefault(q_name(queue), dict.fromkeys(STAT_KEYS, 0))[key] += count
        return stats

    def ping(self) -> None:
        """Check that the database opens and answers (for readiness probes).

        Raises:
            SQLiteBrokerError: If it does not.
        """
        self.store.ping()
