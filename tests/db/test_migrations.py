"""Migrations are the only way the schema changes: upgrade from empty, no drift, and refusal of unknown schemas."""

from __future__ import annotations

import pytest
import sqlalchemy.exc
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
        assert {"translations", "artifacts", "audit_events", "users", "api_tokens"} <= set(
            inspect(db.engine).get_table_names()
        )
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


def test_users_migration_round_trip(db_url: str) -> None:
    """0003 adds users and api_tokens (a token dies with its user); downgrading to 0002 removes exactly them."""
    db = Database.from_url(db_url)
    try:
        migrate.upgrade(db, "0002")
        before = set(inspect(db.engine).get_table_names())
        migrate.upgrade(db)
        tables = set(inspect(db.engine).get_table_names())
        assert tables - before == {"users", "api_tokens"}
        columns = {c["name"] for c in inspect(db.engine).get_columns("users")}
        assert {"name", "role", "password_hash", "must_change_password", "disabled"} <= columns
        assert {c["name"] for c in inspect(db.engine).get_columns("api_tokens")} >= {"token_sha256", "expires_at"}
        with db.engine.begin() as conn:
            conn.execute(text(
                "INSERT INTO users (id, name, role, password_hash, must_change_password, disabled, failed_logins, "
                "created_at, updated_at) VALUES ('u1', 'alice', 'engineer', 'x', true, false, 0, :t, :t)"
            ), {"t": "2026-01-01T00:00:00+00:00"})  # fmt: skip
            conn.execute(text(
                "INSERT INTO api_tokens (id, user_id, token_sha256, created_at, expires_at) "
                "VALUES ('t1', 'u1', :d, :t, :t)"
            ), {"d": "0" * 64, "t": "2026-01-01T00:00:00+00:00"})  # fmt: skip
        with pytest.raises(sqlalchemy.exc.IntegrityError), db.engine.begin() as conn:  # unknown role
            conn.execute(text(
                "INSERT INTO users (id, name, role, password_hash, must_change_password, disabled, failed_logins, "
                "created_at, updated_at) VALUES ('u2', 'bob', 'root', 'x', true, false, 0, :t, :t)"
            ), {"t": "2026-01-01T00:00:00+00:00"})  # fmt: skip
        with db.scope() as session:
            session.execute(text("DELETE FROM users WHERE id = 'u1'"))
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM api_tokens")).scalar() == 0
        assert migrate.check(db) == []
        migrate.downgrade(db, "0002")
        assert set(inspect(db.engine).get_table_names()) == before
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
