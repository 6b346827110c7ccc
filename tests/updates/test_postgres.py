"""`sigforge update apply` on a box whose database is PostgreSQL (a fresh, uniquely named database per test on
127.0.0.1:5432; skipped locally when the server is absent, fatal under CI=true): v1 -> v2 with a migration keeps
the data, `rollback --yes` restores it, and a failed update (a migration raising halfway, a release failing its
health check) leaves v1 running on the restored database. The backup is the portable dump (``db/dump.py``), the
restore runs in the previous release (``sigforge update restore-db``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from releasekit import REPO_HEAD, V2_REV, Box, Releases, running_v1
from sqlalchemy import create_engine, inspect, text

from sigforge.updates import STEPS

pytestmark = [pytest.mark.slow, pytest.mark.postgres, pytest.mark.xdist_group("updates-postgres")]

V2_STEPS = [f"update.{s}" for s in STEPS]
TABLES = ("translations", "artifacts", "toolchains", "audit_events")


class PgBox:
    """Reads a box's PostgreSQL database (what ``Box.snapshot``/``schema``/``audit_actions`` do for SQLite)."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url)

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self.engine.connect() as conn:
            return [tuple(r) for r in conn.execute(text(sql))]

    def snapshot(self) -> dict[str, list[tuple[Any, ...]]]:
        # the user data (the audit log grows with every update: compared separately)
        return {t: self.rows(f"SELECT * FROM {t} ORDER BY 1") for t in TABLES if t != "audit_events"}

    def test_audit(self) -> list[tuple[Any, ...]]:
        return self.rows("SELECT action, subject_id FROM audit_events WHERE actor = 'test' ORDER BY 1")

    def schema(self) -> tuple[str | None, set[str]]:
        inspect(self.engine).clear_cache()
        tables = set(inspect(self.engine).get_table_names())
        revision = self.rows("SELECT version_num FROM alembic_version") if "alembic_version" in tables else []
        return (revision[0][0] if revision else None), tables

    def audit_actions(self) -> list[str]:
        return [r[0] for r in self.rows("SELECT action FROM audit_events WHERE subject_type = 'update' "
                                         "ORDER BY occurred_at, id")]  # fmt: skip

    def insert_audit_row(self) -> None:
        """The identity sequences are past the restored ids: a new row with a generated id can be inserted."""
        with self.engine.begin() as conn:
            conn.execute(text("INSERT INTO audit_events (occurred_at, actor, action, subject_type, subject_id, detail)"
                              " VALUES (now(), 'test-after', 'test.after', 'test', '2', '{}')"))  # fmt: skip

    def dispose(self) -> None:
        self.engine.dispose()


@pytest.fixture
def pg(postgres_url: str) -> Iterator[PgBox]:
    reader = PgBox(postgres_url)
    yield reader
    reader.dispose()


@pytest.fixture
def box(tmp_path: Path, releases: Releases, postgres_url: str, pg: PgBox) -> Iterator[Box]:
    """A v1 box in a temporary PREFIX, its database PostgreSQL, running (pidfile mode), holding rows."""
    with running_v1(tmp_path, releases.keys, releases.v1, database_url=postgres_url) as b:
        yield b


def assert_v1_intact(box: Box, pg: PgBox, before: dict[str, Any], audit: list[tuple[Any, ...]]) -> None:
    assert box.current_version() == "1.0.0"
    assert box.ready() == (200, "1.0.0"), box.log()
    assert pg.snapshot() == before
    assert pg.test_audit() == audit
    revision, tables = pg.schema()
    assert revision == REPO_HEAD
    assert "release_notes" not in tables
    assert not box.journal_exists()
    pg.insert_audit_row()


def _backup_meta(record: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = json.loads((Path(record["backup_dir"]) / "COMPLETE").read_text())
    return meta


def test_update_v1_to_v2_on_postgres_keeps_data_and_rollback_restores_it(
    box: Box, pg: PgBox, releases: Releases
) -> None:
    before, audit = pg.snapshot(), pg.test_audit()
    assert before["translations"] and before["artifacts"] and audit
    assert not (box.data / "sigforge.sqlite3").exists(), "the box must not fall back to SQLite"
    result = box.update("apply", str(releases.v2_bundle))
    assert result.returncode == 0, result.stdout + result.stderr + box.log()
    assert box.current_version() == "2.0.0"
    assert box.ready() == (200, "2.0.0")
    assert pg.snapshot() == before and pg.test_audit() == audit
    revision, tables = pg.schema()
    assert revision == V2_REV and "release_notes" in tables
    assert pg.rows("SELECT text FROM release_notes") == [(f"added by {V2_REV}",)]
    [record] = box.history()
    assert (record["result"], record["steps"]) == ("committed", V2_STEPS)
    meta = _backup_meta(record)
    assert (meta["kind"], meta["revision"]) == ("dump", REPO_HEAD)
    assert {t[0]: t[3] for t in meta["tables"]}["translations"] == len(before["translations"])
    assert pg.audit_actions() == V2_STEPS  # the events went into the migrated PostgreSQL database
    assert not (box.data / "sigforge.sqlite3").exists()

    # `rollback --yes`: v1 again, on the dump taken before the update (the v2 table is gone)
    back = box.update("rollback", "--yes")
    assert back.returncode == 0, back.stdout + back.stderr + box.log()
    assert_v1_intact(box, pg, before, audit)
    assert box.history()[-1]["operation"] == "rollback"
    assert "update.rollback.restore-database" in pg.audit_actions()


def test_a_migration_raising_halfway_on_postgres_is_rolled_back(box: Box, pg: PgBox, releases: Releases) -> None:
    before, audit = pg.snapshot(), pg.test_audit()
    result = box.update("apply", str(releases.v2_migration_raises))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "failed at step migrated" in result.stdout and "fails halfway" in result.stdout
    assert_v1_intact(box, pg, before, audit)
    record = box.history()[-1]
    assert (record["result"], record["reached"]) == ("rolled-back", "migrated")
    actions = pg.audit_actions()
    assert "update.failed" in actions and "update.rollback.restore-database" in actions
    assert actions[-1] == "update.rollback.healthy"
    assert not (box.releases / "2.0.0").exists()


def test_a_release_failing_its_health_check_on_postgres_is_rolled_back(box: Box, pg: PgBox, releases: Releases) -> None:
    """The migration succeeded (V2_REV and its table are in the database) before the release failed to start: the
    restore must drop what the new release's migration created."""
    before, audit = pg.snapshot(), pg.test_audit()
    result = box.update("apply", str(releases.v2_unhealthy))
    assert result.returncode == 1, result.stdout + result.stderr + box.log()
    assert "failed at step healthy" in result.stdout
    assert_v1_intact(box, pg, before, audit)
    assert box.history()[-1]["reached"] == "healthy"
    actions = pg.audit_actions()
    assert "update.rollback.restore-database" in actions and "update.rollback.switch-back" in actions
