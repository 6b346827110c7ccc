"""Migrations are the only way the schema changes: upgrade from empty, no drift, and refusal of unknown schemas."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.errors import SchemaMismatch


def test_upgrade_from_empty_to_head_then_no_drift(db_url: str) -> None:
    db = Database.from_url(db_url)
    try:
        assert migrate.schema_state(db).status is migrate.SchemaStatus.EMPTY
        state = migrate.upgrade(db)
        assert state.status is migrate.SchemaStatus.AT_HEAD
        assert {"translations", "artifacts", "audit_events"} <= set(inspect(db.engine).get_table_names())
        assert migrate.check(db) == []
    finally:
        db.dispose()


def test_downgrade_to_base_and_back(db_url: str) -> None:
    db = Database.from_url(db_url)
    try:
        migrate.upgrade(db)
        migrate.downgrade(db, "base")
        assert "translations" not in inspect(db.engine).get_table_names()
        assert migrate.upgrade(db).status is migrate.SchemaStatus.AT_HEAD
    finally:
        db.dispose()


def test_drift_is_detected(sqlite_db: Database) -> None:
    with sqlite_db.engine.begin() as conn:
        conn.execute(text("ALTER TABLE translations ADD COLUMN rogue INTEGER"))
    assert migrate.check(sqlite_db), "a column the models do not know must be reported as drift"


def test_refuses_a_schema_newer_than_the_code(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    state = migrate.schema_state(db)
    assert state.status is migrate.SchemaStatus.AHEAD
    with pytest.raises(SchemaMismatch, match="newer than this sigforge"):
        migrate.ensure_at_head(db)
    with pytest.raises(SchemaMismatch, match="newer"):
        migrate.upgrade(db)


def test_refuses_an_unmigrated_database(sqlite_url: str) -> None:
    db = Database.from_url(sqlite_url)
    try:
        with pytest.raises(SchemaMismatch, match="sigforge db upgrade"):
            migrate.ensure_at_head(db)
    finally:
        db.dispose()


def test_sqlite_pragmas_apply(sqlite_db: Database) -> None:
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
