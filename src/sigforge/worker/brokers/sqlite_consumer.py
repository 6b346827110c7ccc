"""Consumers of :mod:`sigforge.worker.brokers.sqlite`: claim, ack, nack (dead-letter) and requeue."""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from dramatiq.broker import Consumer, MessageProxy
from dramatiq.common import dq_name, q_name
from dramatiq.errors import DecodeError
from dramatiq.message import Message

from sigforge.worker.brokers.sqlite_liveness import Liveness
from sigforge.worker.brokers.sqlite_store import Claimed, Store, now_ms

logger = logging.getLogger("sigforge.worker.brokers.sqlite")

#: Upper bound on one claim, so a worker with a huge prefetch does not hold the write lock for long.
MAX_CLAIM_BATCH = 64


class SQLiteMessageProxy(MessageProxy):
    """A ``MessageProxy`` carrying its claim token: ack/nack/requeue touch exactly the claim it came from.

    ``sqlite_abandoned`` is how many earlier deliveries died with their worker (see ``max_deliveries``).
    """

    def __init__(self, message: Message[Any], token: tuple[int, int], abandoned: int = 0) -> None:
        super().__init__(message)
        self.sqlite_token = token
        self.sqlite_abandoned = abandoned


def _token(message: Any) -> tuple[int, int]:
    token = getattr(message, "sqlite_token", None)
    if token is None:
        raise TypeError(f"{message!r} was not delivered by an SQLiteBroker consumer")
    return token  # type: ignore[no-any-return]


def describe_failure(message: Any) -> str:
    """One line for the dead-letter ``error`` column.

    The exception if the proxy holds it, else the last line of the traceback the Retries middleware
    stored, else a generic reason.
    """
    exc = getattr(message, "_exception", None)
    if isinstance(exc, BaseException):
        return f"{type(exc).__name__}: {exc}"[:2000]
    tb = message.options.get("traceback")
    if isinstance(tb, str) and tb.strip():
        return tb.strip().splitlines()[-1][:2000]
    return "rejected"


class SQLiteConsumer(Consumer):
    """Consumer of one canonical queue; it also claims that queue's due delay-queue rows.

    ``__next__`` runs in the consumer thread while ``ack``/``nack`` run in worker threads, so the
    bookkeeping of outstanding claims is guarded by a lock.

    Args:
        store: The broker's database.
        liveness: Gives the current worker id and the heartbeat thread claims require.
        queue_name: A canonical (non-delay) queue.
        prefetch: Most messages held (claimed, not yet acked) at once.
        poll_interval_s: Idle wait between claim attempts when nothing wakes us earlier.
        unregister: Called on close (drops the wake-up event from the broker).
    """

    def __init__(
        self,
        store: Store,
        *,
        liveness: Callable[[], Liveness],
        queue_name: str,
        prefetch: int,
        poll_interval_s: float,
        wakeup: threading.Event,
        unregister: Callable[[], None],
    ) -> None:
        self.store = store
        self._liveness = liveness
        self.queue_name = queue_name
        self._queues = (queue_name, dq_name(queue_name))
        self.prefetch = max(1, prefetch)
        self.poll_interval_s = poll_interval_s
        self.wakeup = wakeup
        self._unregister = unregister
        self._lock = threading.Lock()
        self._buffer: deque[SQLiteMessageProxy] = deque()  # claimed, not yet handed to Dramatiq
        self._in_flight: set[tuple[int, int]] = set()  # handed out, not yet acked/nacked/requeued
        self._closed = False

    def __next__(self) -> SQLiteMessageProxy | None:
        if not self._buffer:
            # Clear before looking: an enqueue or ack that lands after this point sets it and ends the wait
            # below.
            self.wakeup.clear()
            with self._lock:
                capacity = self.prefetch - len(self._in_flight)
            if capacity > 0 and self.store.has_ready(self._queues, now_ms()):
                self._buffer.extend(self._claim(min(capacity, MAX_CLAIM_BATCH)))
        if self._buffer:
            proxy = self._buffer.popleft()
            with self._lock:
                self._in_flight.add(proxy.sqlite_token)
            return proxy
        self.wakeup.wait(self.poll_interval_s)
        return None

    def _claim(self, limit: int) -> list[SQLiteMessageProxy]:
        liveness = self._liveness()
        liveness.ensure_running()
        proxies: list[SQLiteMessageProxy] = []
        for row in self.store.claim(self._queues, liveness.worker_id, limit):
            proxy = self._decode(row, liveness.worker_id)
            if proxy is not None:
                proxies.append(proxy)
        return proxies

    def _decode(self, row: Claimed, worker_id: str) -> SQLiteMessageProxy | None:
        try:
            message = Message.decode(row.payload)
        except DecodeError as exc:
            logger.error("Dead-lettering undecodable message row %d: %s", row.row_id, exc)
            self.store.reject(row.row_id, row.delivery, worker_id, None, f"DecodeError: {exc}")
            return None
        if message.queue_name != self.queue_name or "eta" in message.options:
            # A due delay-queue row. The database already held it until its eta, so hand it to Dramatiq as a
            # plain message of the canonical queue (what Dramatiq's in-memory delay handling would produce).
            # The row keeps the original payload, so a requeue puts it back unchanged.
            options = {k: v for k, v in message.options.items() if k != "eta"}
            message = Message(
                queue_name=q_name(message.queue_name),
                actor_name=message.actor_name,
                args=message.args,
                kwargs=message.kwargs,
                options=options,
                message_id=message.message_id,
                message_timestamp=message.message_timestamp,
            )
        return SQLiteMessageProxy(message, (row.row_id, row.delivery), row.abandoned)

    def _release(self, token: tuple[int, int]) -> None:
        with self._lock:
            self._in_flight.discard(token)
        self.wakeup.set()  # capacity freed: claim again without waiting for the poll interval

    def ack(self, message: MessageProxy) -> None:
        """Delete the message's row (a stale claim, e.g. after a retry re-enqueued it, is left alone)."""
        token = _token(message)
        if not self.store.ack(*token, self._liveness().worker_id):
            logger.debug("Ack of %s matched no claim (re-enqueued or redelivered).", message.message_id)
        self._release(token)

    def nack(self, message: MessageProxy) -> None:
        """Dead-letter the message: ``rejected``, payload updated with its options (retries, traceback)."""
        token = _token(message)
        payload = message._message.encode()
        if not self.store.reject(*token, self._liveness().worker_id, payload, describe_failure(message)):
            logger.warning("Nack of %s matched no claim: it was redelivered elsewhere.", message.message_id)
        self._release(token)

    def requeue(self, messages: Iterable[MessageProxy]) -> None:
        """Return claimed-but-unfinished messages (and our unhanded buffer) to ``queued``."""
        tokens = [_token(m) for m in messages]
        self._requeue(tokens)

    def _requeue(self, tokens: list[tuple[int, int]]) -> None:
        tokens += [p.sqlite_token for p in self._buffer]
        self._buffer.clear()
        if tokens:
            moved = self.store.requeue(tokens, self._liveness().worker_id)
            logger.debug("Requeued %d of %d message(s) on %r.", moved, len(tokens), self.queue_name)
        with self._lock:
            self._in_flight.difference_update(tokens)

    def close(self) -> None:
        """Requeue prefetched messages never handed out, and stop being woken up."""
        if self._closed:
            return
        self._closed = True
        try:
            self._requeue([])
        finally:
            self._unregister()


class DelayQueueConsumer(Consumer):
    """Consumer Dramatiq starts for ``<queue>.DQ``: it never yields anything.

    Delayed rows stay in the database until due and are then claimed by the canonical queue's consumer, so a
    delayed message is never held only in a worker's memory.
    """

    def __init__(self, idle_s: float) -> None:
        self._idle = threading.Event()
        self._idle_s = idle_s

    def __next__(self) -> None:
        self._idle.wait(self._idle_s)

    def ack(self, message: Any) -> None:  # pragma: no cover - nothing is ever delivered
        raise TypeError("the delay-queue consumer delivers nothing")

    nack = ack

    def requeue(self, messages: Iterable[Any]) -> None:
        """Nothing to requeue."""

    def close(self) -> None:
        """Wake the idle wait so shutdown is prompt."""
        self._idle.set()
