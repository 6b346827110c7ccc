"""Real external services for tests: found on 127.0.0.1, skipped locally when absent, fatal under CI=true."""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

POSTGRES_URL = os.environ.get("SFTEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("SFTEST_REDIS_URL", "redis://127.0.0.1:6379/15")
RABBITMQ_URL = os.environ.get("SFTEST_RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")

_PORTS = {"postgres": 5432, "redis": 6379, "rabbitmq": 5672}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _reachable(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


def require_service(name: str) -> None:
    """Skip the calling test when service ``name`` is down; under CI=true, fail instead."""
    port = _PORTS[name]
    if _reachable(port):
        return
    message = f"{name} is not reachable on 127.0.0.1:{port}"
    if in_ci():
        pytest.fail(f"{message}, and CI=true forbids skipping it")
    pytest.skip(message)


@contextlib.contextmanager
def scratch_postgres_database(prefix: str = "sftest") -> Iterator[str]:
    """A new, empty PostgreSQL database on ``POSTGRES_URL``'s server (its URL), dropped afterwards (``FORCE``: even
    with sessions still open)."""
    import psycopg
    from sqlalchemy.engine import make_url

    admin = make_url(POSTGRES_URL)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    dsn = admin.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield admin.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
