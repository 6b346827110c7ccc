"""Engines, sessions and the unit-of-work scope.

Rules this module enforces:
- Services never commit; ``Database.scope()`` does, once, at the end of a request or job.
- Work registered with ``after_commit(session, fn)`` runs only after a successful commit and is dropped on
  rollback, which is how jobs are enqueued "after commit".
- SQLite runs in WAL mode with foreign keys on and a busy timeout. Write scopes start with ``BEGIN IMMEDIATE`` so two
  writers queue on the busy timeout instead of failing on a lock upgrade; read scopes stay deferred.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from sigforge.errors import InvalidSettings, ServiceUnavailable
from sigforge.logging import get_logger

log = get_logger(__name__)

_AFTER_COMMIT = "sigforge.after_commit"
_IMMEDIATE = "sigforge_sqlite_immediate"


def _normalise_url(raw: str) -> URL:
    try:
        url = make_url(raw)
    except ArgumentError as exc:
        raise InvalidSettings(f"settings: database.url: not a database URL: {raw!r}", pointer="database.url") from exc
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")
    if url.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidSettings(
            f"settings: database.url: expected a sqlite:/// or postgresql:// URL, got {url.drivername!r}",
            pointer="database.url",
        )
    return url


def _install_sqlite_pragmas(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event emit BEGIN itself (pysqlite's implicit BEGIN cannot be IMMEDIATE).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        immediate = connection.get_execution_options().get(_IMMEDIATE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def make_engine(url: str, *, busy_timeout_ms: int = 10_000, echo: bool = False) -> Engine:
    """An engine for ``url`` with the pragmas and pool this project relies on."""
    parsed = _normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed, echo=echo, connect_args={"check_same_thread": False})
        _install_sqlite_pragmas(engine, busy_timeout_ms)
        return engine
    return create_engine(parsed, echo=echo, pool_pre_ping=True)


def after_commit(session: Session, fn: Callable[[], object]) -> None:
    """Run ``fn`` once the session's transaction commits; forget it if the transaction rolls back."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


class Database:
    """One engine and its session factory; hands out transaction scopes."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False, autoflush=True)

    @classmethod
    def from_url(cls, url: str, *, busy_timeout_ms: int = 10_000, echo: bool = False) -> Database:
        return cls(make_engine(url, busy_timeout_ms=busy_timeout_ms, echo=echo))

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @contextmanager
    def scope(self, *, write: bool = True) -> Iterator[Session]:
        """A session whose transaction commits at the end of the block, or rolls back on any exception.

        Callbacks registered with :func:`after_commit` run after the commit, outside the transaction.
        """
        session = self._sessions()
        try:
            if write and self.is_sqlite:
                session.connection(execution_options={_IMMEDIATE: True})
            yield session
            session.commit()
        except BaseException:
            session.info.pop(_AFTER_COMMIT, None)
            session.rollback()
            raise
        finally:
            callbacks = session.info.pop(_AFTER_COMMIT, [])
            session.close()
        for callback in callbacks:
            # The transaction is committed: a failing follow-up (the broker is down) must not turn into an error
            # for work that was saved. It is logged; recovery (e.g. re-dispatch of stale jobs) picks it up.
            try:
                callback()
            except Exception:
                log.exception("after_commit.failed", callback=getattr(callback, "__qualname__", repr(callback)))

    def ping(self) -> None:
        """Raise ServiceUnavailable unless the database answers a trivial query."""
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except OperationalError as exc:
            raise ServiceUnavailable(f"database unreachable: {exc.orig}") from exc

    def dispose(self) -> None:
        self.engine.dispose()
