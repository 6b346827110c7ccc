"""Fixtures for end-to-end tests: a data dir shared by the test and a real worker pool on the embedded broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import WorkerPool

from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.settings import Settings, load_settings

FAST_BROKER = {
    "SIGFORGE_BROKER_HEARTBEAT_INTERVAL_S": "0.2",
    "SIGFORGE_BROKER_HEARTBEAT_TTL_S": "2",
    "SIGFORGE_BROKER_POLL_INTERVAL_S": "0.05",
    "SIGFORGE_BROKER_MIN_BACKOFF_MS": "100",
}


@pytest.fixture
def e2e_env(tmp_path: Path) -> dict[str, str]:
    return {"SIGFORGE_DATA_DIR": str(tmp_path / "data"), **FAST_BROKER}


@pytest.fixture
def e2e_settings(e2e_env: dict[str, str]) -> Settings:
    return load_settings(env=e2e_env)


@pytest.fixture
def e2e_db(e2e_settings: Settings) -> Iterator[Database]:
    db = Database.from_url(e2e_settings.database_url)
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def worker_pool(e2e_env: dict[str, str], tmp_path: Path, e2e_db: Database) -> Iterator[WorkerPool]:
    pool = WorkerPool(e2e_env, tmp_path / "worker.log")
    yield pool
    pool.stop()
