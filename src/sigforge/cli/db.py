"""``sigforge db upgrade|current|check``."""

from __future__ import annotations

from sigforge.db import migrate
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.logging import configure_logging
from sigforge.settings import Settings

EXIT_OK, EXIT_DRIFT = 0, 1


def open_database(settings: Settings) -> Database:
    return Database.from_url(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)


def upgrade_and_audit(db: Database, actor: str = "cli") -> migrate.SchemaState:
    """Migrate to head and write an audit event when the revision changed."""
    before = migrate.schema_state(db)
    after = migrate.upgrade(db)
    if before.current != after.current:
        with db.scope() as session:
            AuditRepository(session).record(
                actor=actor,
                action="db.upgraded",
                subject_type="database",
                subject_id=db.engine.dialect.name,
                detail={"from": before.current, "to": after.current},
            )
    return after


def run_db(action: str, settings: Settings) -> int:
    configure_logging(settings.log_level, "console")
    db = open_database(settings)
    try:
        if action == "upgrade":
            state = upgrade_and_audit(db)
            print(f"database at {state.current} (head {state.head})")
            return EXIT_OK
        if action == "current":
            state = migrate.schema_state(db)
            print(f"current: {state.current or '(empty)'}\nhead:    {state.head}\nstatus:  {state.status.value}")
            return EXIT_OK
        migrate.ensure_at_head(db)
        drift = migrate.check(db)
        if drift:
            print("schema drift between the models and the migrations:")
            for line in drift:
                print(f"  {line}")
            return EXIT_DRIFT
        print("no drift: the migrated schema matches the models")
        return EXIT_OK
    finally:
        db.dispose()
