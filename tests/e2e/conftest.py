"""Fixtures for end-to-end tests: a data dir shared by the test and a real worker pool on the embedded broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_support import WorkerPool

from realservices import RABBITMQ_URL, require_service
from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.settings import Settings, load_settings
from support import provision_toolchain

FAST_BROKER = {
    "SIGFORGE_BROKER_HEARTBEAT_INTERVAL_S": "0.2",
    "SIGFORGE_BROKER_HEARTBEAT_TTL_S": "2",
    "SIGFORGE_BROKER_POLL_INTERVAL_S": "0.05",
    "SIGFORGE_BROKER_MIN_BACKOFF_MS": "100",
}


E2E_REDIS_URL = "redis://127.0.0.1:6379/13"  # its own database: the conformance tests flush theirs


def _fresh_broker_queue(url: str) -> None:
    """Empty the shared server's translation queues so that a previous run cannot leak jobs into this one."""
    from sigforge.settings import load_settings
    from sigforge.worker.broker import TRANSLATIONS_QUEUE, make_broker

    broker = make_broker(load_settings(env={"SIGFORGE_BROKER_URL": url}))
    broker.declare_queue(TRANSLATIONS_QUEUE)
    broker.flush_all()
    broker.close()


@pytest.fixture(params=["embedded"])
def site(request: pytest.FixtureRequest) -> str:
    """The deployment shape: ``embedded`` (SQLite + SQLite broker), ``postgres+redis`` or ``postgres+rabbitmq``."""
    return str(request.param)


@pytest.fixture
def e2e_env(site: str, tmp_path: Path, request: pytest.FixtureRequest) -> dict[str, str]:
    env = {"SIGFORGE_DATA_DIR": str(tmp_path / "data"), **FAST_BROKER}
    if site == "embedded":
        return env
    database, broker = site.split("+")
    env["SIGFORGE_DATABASE_URL"] = str(request.getfixturevalue(f"{database}_url"))
    require_service(broker)
    env["SIGFORGE_BROKER_URL"] = E2E_REDIS_URL if broker == "redis" else RABBITMQ_URL
    _fresh_broker_queue(env["SIGFORGE_BROKER_URL"])
    return env


@pytest.fixture
def e2e_settings(e2e_env: dict[str, str]) -> Settings:
    return load_settings(env=e2e_env)


@pytest.fixture
def e2e_db(e2e_settings: Settings) -> Iterator[Database]:
    db = Database.from_url(e2e_settings.database_url)
    migrate.upgrade(db)
    provision_toolchain(e2e_settings)  # the site builds only with a registry toolchain imported from a bundle
    yield db
    db.dispose()


@pytest.fixture
def worker_pool(e2e_env: dict[str, str], tmp_path: Path, e2e_db: Database) -> Iterator[WorkerPool]:
    pool = WorkerPool(e2e_env, tmp_path / "worker.log")
    yield pool
    pool.stop()
