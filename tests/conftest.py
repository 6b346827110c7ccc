"""Suite-wide fixtures: the network guard, child-process environment, service helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

import _netguard

_netguard.install()

# Property tests explore new examples on every local run; under CI they replay a fixed, derandomised set so that a
# submission's verdict depends on the code, not on the dice. A failure prints the example to reproduce it.
settings.register_profile("ci", derandomize=True, print_blob=True, database=None)
if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never read the developer's SIGFORGE_* environment or a stray sigforge.toml."""
    for key in list(os.environ):
        if key.startswith("SIGFORGE_"):
            monkeypatch.delenv(key, raising=False)


# --- databases built from migrations (never create_all) -------------------------------------------------------------

from collections.abc import Iterator  # noqa: E402

from realservices import require_service, scratch_postgres_database  # noqa: E402


def _migrated(url: str):  # type: ignore[no-untyped-def]
    from sigforge.db import migrate
    from sigforge.db.session import Database

    db = Database.from_url(url)
    migrate.upgrade(db)
    return db


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'sigforge.sqlite3'}"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    require_service("postgres")
    with scratch_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each storage test runs on SQLite and on PostgreSQL (skipped locally when absent; fatal under CI)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "postgres_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
def db(db_url: str):  # type: ignore[no-untyped-def]
    database = _migrated(db_url)
    yield database
    database.dispose()


@pytest.fixture
def sqlite_db(sqlite_url: str):  # type: ignore[no-untyped-def]
    database = _migrated(sqlite_url)
    yield database
    database.dispose()


# --- the host compiler and the sandboxed runner, for compiled-C tests -------------------------------------------------


@pytest.fixture(scope="session")
def cc():  # type: ignore[no-untyped-def]
    from sigforge.toolchains.host import find_host_cc

    return find_host_cc()


@pytest.fixture(scope="session")
def runner():  # type: ignore[no-untyped-def]
    from sigforge.toolchains.runner import ProcessRunner

    return ProcessRunner()
