"""Heartbeat and reaper thread of :mod:`sigforge.worker.brokers.sqlite` (one per broker per process)."""

from __future__ import annotations

import logging
import os
import threading
import uuid

from sigforge.worker.brokers.sqlite_store import Store

logger = logging.getLogger("sigforge.worker.brokers.sqlite")


class Liveness:
    """A worker identity plus the thread that keeps it alive in the database and reaps dead peers.

    The identity is per process: after fork the broker replaces this object (see ``SQLiteBroker``),
    because the child neither inherits the parent's threads nor may it reuse the parent's id.

    Args:
        store: The broker's database.
        interval_s: Seconds between beats.
        ttl_s: Seconds a peer's heartbeat must stand still, on our monotonic clock, before we declare it dead.
        max_deliveries: Abandonments (holder died running it) after which the reaper dead-letters a message.
    """

    def __init__(self, store: Store, *, interval_s: float, ttl_s: float, max_deliveries: int | None) -> None:
        self.store = store
        self.interval_s = interval_s
        self.ttl_s = ttl_s
        self.max_deliveries = max_deliveries
        self.pid = os.getpid()
        self.worker_id = f"{os.getpid()}-{uuid.uuid4().hex}"
        self._lock = threading.Lock()
        # Held for a whole beat+reap, and across fork() (see before_fork), so a child is never forked while
        # this thread is inside SQLite.
        self._tick_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._registered = False
        self._observed: dict[str, tuple[int, float]] = {}

    @property
    def running(self) -> bool:
        """Whether this process has a live heartbeat thread for this identity."""
        thread = self._thread
        return thread is not None and thread.is_alive() and self.pid == os.getpid()

    def ensure_running(self) -> None:
        """Register (synchronously) and start the heartbeat thread unless it already runs in this process.

        Called before every claim, so any process that holds messages has a heartbeat thread, including one
        whose earlier thread died or which was forked from a process that had one.
        """
        if self.running:
            return
        with self._lock:
            if self.running:
                return
            self._stop.clear()
            self.tick()  # the liveness row exists before this call returns, i.e. before any claim
            self._thread = threading.Thread(
                target=self._run, name=f"sqlite-broker-heartbeat-{self.worker_id[:16]}", daemon=True
            )
            self._thread.start()

    def tick(self) -> None:
        """One beat then one reaper pass (two short transactions, so a slow reap never delays the beat)."""
        with self._tick_lock:
            self._tick()

    def _tick(self) -> None:
        if not self.store.beat(self.worker_id) and self._registered:
            logger.warning(
                "Worker %s was declared dead by a peer (its heartbeat stalled for over %.1fs); the"
                " messages it held were requeued and may run twice.",
                self.worker_id,
                self.ttl_s,
            )
        self._registered = True
        reaped = self.store.reap(self.worker_id, self._observed, self.ttl_s, self.max_deliveries)
        if reaped.dead or reaped.requeued:
            logger.warning("Reaper: workers %s presumed dead; requeued %d message(s).", reaped.dead, reaped.requeued)
        if reaped.dead_lettered:
            logger.error(
                "Reaper: dead-lettered %d message(s) abandoned by dead workers %d times (poison messages?): %s",
                len(reaped.dead_lettered),
                self.max_deliveries,
                ", ".join(reaped.dead_lettered),
            )

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.tick()
            except Exception:
                # Never let the thread die: a dead heartbeat thread in a live worker is exactly what gets its
                # messages redelivered. ensure_running() also restarts it should it die anyway.
                logger.exception("Broker heartbeat failed; retrying in %.1fs.", self.interval_s)

    def before_fork(self) -> None:
        """Wait for the heartbeat thread to be outside SQLite and keep it out until the fork is done."""
        self._tick_lock.acquire()

    def after_fork_in_parent(self) -> None:
        """Let the parent's heartbeat thread run again."""
        self._tick_lock.release()

    def stop(self) -> None:
        """Stop the thread (if it runs in this process) and wait for it."""
        self._stop.set()
        thread = self._thread
        if thread is not None and self.pid == os.getpid() and thread is not threading.current_thread():
            thread.join(timeout=max(5.0, 2 * self.interval_s))
        self._thread = None
