"""A real app on a migrated SQLite database and the embedded broker, driven in-process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from litestar.testing import TestClient

from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.settings import Settings, load_settings
from sigforge.web.app import create_app
from sigforge.worker.broker import make_broker
from sigforge.worker.dispatch import JobDispatcher
from userkit import sign_in


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(
        env={"SIGFORGE_DATA_DIR": str(tmp_path / "data"), "SIGFORGE_LIMITS_MAX_REQUEST_BYTES": "65536"}
    )


@pytest.fixture
def app_db(settings: Settings) -> Iterator[Database]:
    db = Database.from_url(settings.database_url)
    migrate.upgrade(db)
    yield db
    db.dispose()


@pytest.fixture
def broker(settings: Settings):  # type: ignore[no-untyped-def]
    b = make_broker(settings)
    yield b
    b.close()


@pytest.fixture
def client(settings: Settings, app_db: Database, broker) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    app = create_app(settings, db=app_db, jobs=JobDispatcher(broker))
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def admin_client(client: TestClient, app_db: Database) -> TestClient:
    """``client`` signed in as the admin ``ops`` (for the admin-only endpoints)."""
    sign_in(client, app_db, "ops", "admin")
    return client
