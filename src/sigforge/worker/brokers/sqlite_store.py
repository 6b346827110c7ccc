"""SQL layer of :mod:`sigforge.worker.brokers.sqlite`: schema, connections, every statement it runs.

Nothing here knows about Dramatiq's middleware, or about threads beyond "one connection per thread";
the invariants these statements keep are stated in the :mod:`sigforge.worker.brokers.sqlite`
module docstring.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dramatiq.errors import ConnectionClosed

SCHEMA_VERSION = 2

#: States a message row can be in (ack deletes the row, so "done" is not a state).
QUEUED, CONSUMED, REJECTED = "queued", "consumed", "rejected"
STATES = (QUEUED, CONSUMED, REJECTED)

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS broker_messages (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    message_id    TEXT    NOT NULL UNIQUE,
    queue         TEXT    NOT NULL,
    state         TEXT    NOT NULL CHECK (state IN ('{QUEUED}', '{CONSUMED}', '{REJECTED}')),
    available_at  INTEGER NOT NULL,
    worker_id     TEXT,
    delivery      INTEGER NOT NULL DEFAULT 0,
    abandoned     INTEGER NOT NULL DEFAULT 0,
    started       INTEGER NOT NULL DEFAULT 0,
    enqueued_at   INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    error         TEXT,
    payload       BLOB    NOT NULL
);
CREATE INDEX IF NOT EXISTS broker_messages_claim ON broker_messages (queue, state, available_at);
CREATE INDEX IF NOT EXISTS broker_messages_worker ON broker_messages (state, worker_id);
CREATE TABLE IF NOT EXISTS broker_workers (
    worker_id     TEXT    PRIMARY KEY,
    pid           INTEGER NOT NULL,
    hostname      TEXT    NOT NULL,
    seq           INTEGER NOT NULL,
    started_at    INTEGER NOT NULL,
    heartbeat_at  INTEGER NOT NULL
);
"""

#: Statements that bring a database of schema version ``v`` to ``v + 1`` (a new database gets ``_SCHEMA``).
#: v2: ``abandoned`` (how many times the message's holder died while running it) and ``started`` (the current
#: claim's holder began running it; written only for messages already abandoned at least once).
_MIGRATIONS: dict[int, tuple[str, ...]] = {
    1: (
        "ALTER TABLE broker_messages ADD COLUMN abandoned INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE broker_messages ADD COLUMN started INTEGER NOT NULL DEFAULT 0",
    ),
}

#: Upsert of a worker's liveness row. ``seq`` is what the reaper watches: it changes on every beat whatever
#: the wall clock does.
_BEAT = """
INSERT INTO broker_workers (worker_id, pid, hostname, seq, started_at, heartbeat_at) VALUES (?, ?, ?, 1, ?, ?)
ON CONFLICT (worker_id) DO UPDATE SET seq = seq + 1, heartbeat_at = excluded.heartbeat_at
"""

#: Connections abandoned by fork(): the child must neither use nor close them (closing could checkpoint or
#: unlink the parent's WAL), so they are kept referenced here for the life of the child.
_ABANDONED_AFTER_FORK: list[sqlite3.Connection] = []


class SQLiteBrokerError(ConnectionClosed):
    """The broker database could not be opened, queried or written (locked too long, I/O error...).

    It subclasses Dramatiq's ``ConnectionClosed`` on purpose: worker threads retry an ack/nack that
    fails with it instead of dropping it, and consumer threads restart instead of dying.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)  # type: ignore[no-untyped-call]


def now_ms() -> int:
    """Wall-clock time in epoch milliseconds, the unit of ``available_at`` (Dramatiq's ``eta`` convention)."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this worker just moved to ``consumed``; ``(row_id, delivery)`` is the claim token.

    ``abandoned`` counts the earlier deliveries whose worker died while running the message.
    """

    row_id: int
    delivery: int
    available_at: int
    abandoned: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Reaped:
    """Outcome of one reaper pass."""

    dead: list[str]  #: worker ids declared dead in this pass
    requeued: int  #: rows of dead (or unregistered) workers put back to ``queued``
    dead_lettered: list[str]  #: message ids moved to ``rejected`` instead: abandoned ``max_deliveries`` times


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A ``rejected`` row."""

    row_id: int
    message_id: str
    queue: str
    error: str | None
    payload: bytes


@contextlib.contextmanager
def _translate_errors() -> Iterator[None]:
    try:
        yield
    except (sqlite3.IntegrityError, sqlite3.ProgrammingError):
        raise  # bugs, not an unavailable database
    except sqlite3.DatabaseError as exc:  # locked, I/O error, "file is not a database", cannot open...
        raise SQLiteBrokerError(f"{type(exc).__name__}: {exc}") from exc


class Store:
    """Connections to one broker database file plus the statements run on it.

    Args:
        path: The SQLite file; created (with its parent directory) on first use.
        synchronous: ``PRAGMA synchronous`` for every connection.
        busy_timeout_s: How long a statement waits for another writer before failing.
    """

    def __init__(self, path: str | os.PathLike[str], *, synchronous: Literal["NORMAL", "FULL"], busy_timeout_s: float):
        self.path = Path(path)
        self.synchronous = synchronous
        self.busy_timeout_s = busy_timeout_s
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._local = threading.local()
        self._lock = threading.Lock()
        # Every connection this process opened, with the thread that owns it: close() reaches those of
        # finished threads, and fork can abandon them all.
        self._connections: list[tuple[threading.Thread, sqlite3.Connection]] = []

    def reset_after_fork(self) -> None:
        """In a forked child: abandon (never use, never close) the parent's connections; start afresh."""
        _ABANDONED_AFTER_FORK.extend(conn for _, conn in self._connections)
        self._reset()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection, opened (and the schema created) on first use."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        with _translate_errors():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            try:
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if str(mode).lower() != "wal":
                    raise SQLiteBrokerError(f"{self.path}: cannot switch to WAL journal mode (got {mode!r})")
                conn.execute(f"PRAGMA synchronous = {self.synchronous}")
                self._ensure_schema(conn)
            except BaseException:
                conn.close()
                raise
        with self._lock:
            self._connections.append((threading.current_thread(), conn))
        self._local.conn = conn
        return conn

    def _ensure_schema(self, conn: sqlite3.Connection) -> None:
        (version,) = conn.execute("PRAGMA user_version").fetchone()
        if version == SCHEMA_VERSION:
            return
        if version > SCHEMA_VERSION:
            raise SQLiteBrokerError(
                f"{self.path}: broker schema version {version} is newer than this sigforge ({SCHEMA_VERSION})"
            )
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Read again under the write lock: another process may have created or migrated it meanwhile.
            (version,) = conn.execute("PRAGMA user_version").fetchone()
            # Not executescript(): it would COMMIT first and lose BEGIN IMMEDIATE's serialisation.
            if version == 0:
                statements: list[str] = list(filter(str.strip, _SCHEMA.split(";")))
            else:
                statements = [sql for v in range(version, SCHEMA_VERSION) for sql in _MIGRATIONS[v]]
            for statement in statements:
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction: the write lock is taken first, so reads in it are current."""
        conn = self.connection()
        with _translate_errors():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def read(self, sql: str, params: Sequence[object] = ()) -> list[Any]:
        """Run one read-only statement outside any explicit transaction."""
        with _translate_errors():
            return self.connection().execute(sql, params).fetchall()

    def close(self) -> None:
        """Close this thread's connection and those of finished threads.

        A connection of a thread that is still running stays open (closing a connection another thread
        is using can crash the interpreter); it is closed by a later ``close()`` once its thread is done.
        """
        if os.getpid() != self._pid:  # pragma: no cover - reset_after_fork normally ran
            self.reset_after_fork()
            return
        me = threading.current_thread()
        with self._lock:
            closing = [conn for owner, conn in self._connections if owner is me or not owner.is_alive()]
            self._connections = [(o, c) for o, c in self._connections if o is not me and o.is_alive()]
            self._local.conn = None
        for conn in closing:
            with contextlib.suppress(sqlite3.Error):
                conn.close()

    # -- producers -------------------------------------------------------------------------------

    def put(self, message_id: str, queue: str, available_at: int, payload: bytes) -> None:
        """Insert a message, or reset the row of the same message id (a retry re-enqueues the same id)."""
        now = now_ms()
        with self.write() as conn:
            conn.execute(
                "INSERT INTO broker_messages"
                " (message_id, queue, state, available_at, enqueued_at, updated_at, payload)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (message_id) DO UPDATE SET queue = excluded.queue, state = excluded.state,"
                " available_at = excluded.available_at, worker_id = NULL, error = NULL,"
                " updated_at = excluded.updated_at, payload = excluded.payload",
                (message_id, queue, QUEUED, available_at, now, now, payload),
            )

    # -- consumers -------------------------------------------------------------------------------

    def has_ready(self, queues: Sequence[str], now: int) -> bool:
        """Cheap read-only check, so idle consumers poll without taking the write lock."""
        marks = ",".join("?" * len(queues))
        rows = self.read(
            f"SELECT 1 FROM broker_messages WHERE queue IN ({marks})"  # noqa: S608 - placeholders only
            " AND state = ? AND available_at <= ? LIMIT 1",
            (*queues, QUEUED, now),
        )
        return bool(rows)

    def claim(self, queues: Sequence[str], worker_id: str, limit: int) -> list[Claimed]:
        """Move up to ``limit`` due messages to ``consumed`` for ``worker_id``, oldest ``available_at`` first.

        The worker's liveness row is upserted in the same transaction, so no reaper can ever see a
        claimed message whose worker has no fresh heartbeat.
        """
        marks = ",".join("?" * len(queues))
        with self.write() as conn:
            now = now_ms()  # after the write lock: the claim and the heartbeat carry the commit-time clock
            conn.execute(_BEAT, (worker_id, os.getpid(), socket.gethostname(), now, now))
            sql = (
                "UPDATE broker_messages SET state = ?, worker_id = ?,"  # noqa: S608 - placeholders only
                " delivery = delivery + 1, started = 0, updated_at = ?"
                " WHERE id IN (SELECT id FROM broker_messages"
                f"  WHERE queue IN ({marks}) AND state = ? AND available_at <= ?"
                "  ORDER BY available_at, id LIMIT ?)"
                " RETURNING id, delivery, available_at, abandoned, payload"
            )
            rows = conn.execute(
                sql,
                (CONSUMED, worker_id, now, *queues, QUEUED, now, limit),
            ).fetchall()
        claimed = [Claimed(int(r[0]), int(r[1]), int(r[2]), int(r[3]), bytes(r[4])) for r in rows]
        claimed.sort(key=lambda c: (c.available_at, c.row_id))  # RETURNING order is unspecified
        return claimed

    def mark_started(self, row_id: int, delivery: int, worker_id: str) -> bool:
        """Record that the holder of this claim began running it. False when the claim token is stale."""
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE broker_messages SET started = 1 WHERE id = ? AND delivery = ? AND state = ? AND worker_id = ?",
                (row_id, delivery, CONSUMED, worker_id),
            )
            return cur.rowcount > 0

    def ack(self, row_id: int, delivery: int, worker_id: str) -> bool:
        """Delete a claimed row. False when the claim token is stale (redelivered or re-enqueued since)."""
        with self.write() as conn:
            cur = conn.execute(
                "DELETE FROM broker_messages WHERE id = ? AND delivery = ? AND state = ? AND worker_id = ?",
                (row_id, delivery, CONSUMED, worker_id),
            )
            return cur.rowcount > 0

    def reject(self, row_id: int, delivery: int, worker_id: str, payload: bytes | None, error: str) -> bool:
        """Dead-letter a claimed row, keeping the updated message and its failure.

        Returns:
            False if the claim token is stale.
        """
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE broker_messages SET state = ?, worker_id = NULL, error = ?, updated_at = ?,"
                " payload = coalesce(?, payload)"
                " WHERE id = ? AND delivery = ? AND state = ? AND worker_id = ?",
                (REJECTED, error, now_ms(), payload, row_id, delivery, CONSUMED, worker_id),
            )
            return cur.rowcount > 0

    def requeue(self, tokens: Iterable[tuple[int, int]], worker_id: str) -> int:
        """Put claimed rows back to ``queued`` (keeping their place in line). Returns how many moved."""
        params = [(QUEUED, now_ms(), row_id, delivery, CONSUMED, worker_id) for row_id, delivery in tokens]
        if not params:
            return 0
        with self.write() as conn:
            cur = conn.executemany(
                "UPDATE broker_messages SET state = ?, worker_id = NULL, updated_at = ?"
                " WHERE id = ? AND delivery = ? AND state = ? AND worker_id = ?",
                params,
            )
            return cur.rowcount

    # -- liveness --------------------------------------------------------------------------------------------

    def beat(self, worker_id: str) -> bool:
        """Record a heartbeat. Returns False when the row had to be re-created (someone declared us dead)."""
        with self.write() as conn:
            now = now_ms()
            cur = conn.execute(
                "UPDATE broker_workers SET seq = seq + 1, heartbeat_at = ? WHERE worker_id = ?",
                (now, worker_id),
            )
            if cur.rowcount:
                return True
            conn.execute(_BEAT, (worker_id, os.getpid(), socket.gethostname(), now, now))
            return False

    def reap(
        self, self_id: str, observed: dict[str, tuple[int, float]], ttl_s: float, max_deliveries: int | None
    ) -> Reaped:
        """Declare dead the workers whose ``seq`` has not moved for ``ttl_s`` of *our* monotonic time; requeue
        every message held by a worker that has no liveness row (the dead ones, and orphans), or dead-letter it
        if that makes ``max_deliveries`` abandonments.

        A message's ``abandoned`` count grows by one when its holder is found dead and either the holder had
        started running it (``started``) or it had never been abandoned before (``started`` is written only
        for such suspects, so a first abandonment cannot tell a running message from a prefetched one).

        Args:
            self_id: The calling worker (never reaped by itself).
            observed: ``worker_id -> (seq, monotonic time first seen with that seq)``, kept by the
                caller across calls; updated in place.
            ttl_s: Visibility timeout.
            max_deliveries: Abandonments that make a message a dead letter; None for no limit.

        Returns:
            What the pass did.
        """
        with self.write() as conn:
            # Read after taking the write lock, so our wait for it never counts as someone's silence.
            mono = time.monotonic()
            dead: list[str] = []
            live: set[str] = set()
            for worker_id, seq in conn.execute("SELECT worker_id, seq FROM broker_workers").fetchall():
                live.add(worker_id)
                if worker_id == self_id:
                    continue
                seen = observed.get(worker_id)
                if seen is None or seen[0] != seq:
                    observed[worker_id] = (int(seq), mono)
                elif mono - seen[1] >= ttl_s:
                    dead.append(worker_id)
            for worker_id in set(observed) - live:
                del observed[worker_id]
            if dead:
                conn.executemany("DELETE FROM broker_workers WHERE worker_id = ?", [(w,) for w in dead])
                for worker_id in dead:
                    observed.pop(worker_id, None)
            now = now_ms()
            orphaned = "state = ? AND worker_id NOT IN (SELECT worker_id FROM broker_workers)"
            strike = "(CASE WHEN abandoned = 0 OR started THEN 1 ELSE 0 END)"
            poisoned: list[str] = []
            if max_deliveries is not None:
                rows = conn.execute(
                    f"UPDATE broker_messages SET state = ?, worker_id = NULL, abandoned = abandoned + {strike},"  # noqa: S608 - constants only
                    f" error = 'abandoned by a dead worker ' || (abandoned + {strike}) || ' times (max_deliveries='"
                    " || ? || ')', updated_at = ?"
                    f" WHERE {orphaned} AND abandoned + {strike} >= ?"
                    " RETURNING message_id",
                    (REJECTED, max_deliveries, now, CONSUMED, max_deliveries),
                ).fetchall()
                poisoned = [str(r[0]) for r in rows]
            cur = conn.execute(
                f"UPDATE broker_messages SET state = ?, worker_id = NULL, abandoned = abandoned + {strike},"  # noqa: S608 - constants only
                f" started = 0, updated_at = ? WHERE {orphaned}",
                (QUEUED, now, CONSUMED),
            )
            return Reaped(dead, cur.rowcount, poisoned)

    def retire(self, worker_id: str) -> int:
        """A worker leaves: requeue what it still holds, delete its liveness row. Returns rows requeued.

        Not an abandonment (``abandoned`` is left alone): the process is alive and leaving on purpose, so what it
        still holds was prefetched, or outlived the shutdown timeout; neither says the message kills workers.
        """
        with self.write() as conn:
            cur = conn.execute(
                "UPDATE broker_messages SET state = ?, worker_id = NULL, updated_at = ?"
                " WHERE state = ? AND worker_id = ?",
                (QUEUED, now_ms(), CONSUMED, worker_id),
            )
            conn.execute("DELETE FROM broker_workers WHERE worker_id = ?", (worker_id,))
            return cur.rowcount

    # -- administration --------------------------------------------------------------------------

    def pending(self, queues: Sequence[str]) -> int:
        """Rows not yet finished (queued, delayed or in flight) on ``queues``."""
        marks = ",".join("?" * len(queues))
        ((count,),) = self.read(
            f"SELECT count(*) FROM broker_messages WHERE queue IN ({marks}) AND state IN (?, ?)",  # noqa: S608 - placeholders only
            (*queues, QUEUED, CONSUMED),
        )
        return int(count)

    def delete_queues(self, queues: Sequence[str] | None) -> int:
        """Delete every row of ``queues`` (all rows when None), whatever its state."""
        with self.write() as conn:
            if queues is None:
                return conn.execute("DELETE FROM broker_messages").rowcount
            marks = ",".join("?" * len(queues))
            sql = f"DELETE FROM broker_messages WHERE queue IN ({marks})"  # noqa: S608 - placeholders only
            return conn.execute(sql, tuple(queues)).rowcount

    def dead_letters(self, queues: Sequence[str] | None, limit: int) -> list[DeadLetter]:
        """Rejected rows, most recently rejected first."""
        where, params = _queue_filter(queues)
        rows = self.read(
            f"SELECT id, message_id, queue, error, payload FROM broker_messages WHERE state = ?{where}"  # noqa: S608 - placeholders only
            " ORDER BY updated_at DESC, id DESC LIMIT ?",
            (REJECTED, *params, limit),
        )
        return [_dead_letter(r) for r in rows]

    def dead_letter(self, message_id: str) -> DeadLetter | None:
        """The rejected row of ``message_id``, if any."""
        rows = self.read(
            "SELECT id, message_id, queue, error, payload FROM broker_messages WHERE message_id = ? AND state = ?",
            (message_id, REJECTED),
        )
        if not rows:
            return None
        return _dead_letter(rows[0])

    def revive(self, row_id: int, queue: str, payload: bytes) -> bool:
        """Move a rejected row back to ``queued`` on ``queue``, due now. False if it is no longer rejected."""
        with self.write() as conn:
            now = now_ms()
            cur = conn.execute(
                "UPDATE broker_messages SET state = ?, queue = ?, available_at = ?, worker_id = NULL,"
                " error = NULL, abandoned = 0, started = 0, updated_at = ?, payload = ? WHERE id = ? AND state = ?",
                (QUEUED, queue, now, now, payload, row_id, REJECTED),
            )
            return cur.rowcount > 0

    def purge_rejected(self, queues: Sequence[str] | None) -> int:
        """Delete rejected rows; returns how many."""
        where, params = _queue_filter(queues)
        with self.write() as conn:
            sql = f"DELETE FROM broker_messages WHERE state = ?{where}"  # noqa: S608 - placeholders only
            return conn.execute(sql, (REJECTED, *params)).rowcount

    def counts(self, now: int) -> list[tuple[str, str, bool, int]]:
        """``(queue, state, due, count)`` groups over all rows."""
        rows = self.read(
            "SELECT queue, state, available_at <= ?, count(*) FROM broker_messages GROUP BY 1, 2, 3", (now,)
        )
        return [(str(r[0]), str(r[1]), bool(r[2]), int(r[3])) for r in rows]

    def ping(self) -> None:
        """Open this thread's connection and query both tables."""
        self.read("SELECT count(*) FROM broker_workers")
        self.read("SELECT 1 FROM broker_messages LIMIT 1")


def _queue_filter(queues: Sequence[str] | None) -> tuple[str, tuple[str, ...]]:
    if queues is None:
        return "", ()
    return f" AND queue IN ({','.join('?' * len(queues))})", tuple(queues)


def _dead_letter(row: Any) -> DeadLetter:
    error = None if row[3] is None else str(row[3])
    return DeadLetter(int(row[0]), str(row[1]), str(row[2]), error, bytes(row[4]))
