"""Alembic environment: runs on the engine sigforge hands over (so SQLite pragmas apply), or on the one named by
sigforge's settings when invoked through the plain ``alembic`` command."""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Engine

from sigforge.db.models import Base

config = context.config


def _engine() -> Engine:
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine  # type: ignore[no-any-return]
    from sigforge.db.session import make_engine
    from sigforge.settings import load_settings

    settings = load_settings()
    return make_engine(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)


def run_migrations_online() -> None:
    with _engine().connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `sigforge db upgrade`")
run_migrations_online()
