"""The Litestar application factory."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.response_cache import ResponseCacheConfig
from litestar.datastructures import CacheControlHeader, State
from litestar.static_files import create_static_files_router

from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.services.ports import JobQueue
from sigforge.settings import Settings
from sigforge.web.context import AppContext
from sigforge.web.controllers.session import SessionController
from sigforge.web.controllers.system import STATIC_DIR, console, healthz, list_targets, readyz
from sigforge.web.controllers.toolchains import toolchain_router
from sigforge.web.controllers.translations import TranslationController
from sigforge.web.controllers.updates import updates_router
from sigforge.web.errors import EXCEPTION_HANDLERS
from sigforge.web.middleware import RequestContextMiddleware
from sigforge.web.openapi import openapi_config


def create_app(
    settings: Settings, *, jobs: JobQueue, db: Database | None = None, check_schema: bool = True
) -> Litestar:
    """Build the web application.

    Args:
        settings: the node's settings.
        jobs: where translation jobs are sent (``sigforge.worker.dispatch.JobDispatcher`` in production).
        db: the database to use (default: one opened from ``settings``).
        check_schema: refuse to start unless the database schema is exactly at this code's head.
    """
    db = db or Database.from_url(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    ctx = AppContext(settings=settings, db=db, jobs=jobs)

    def _refuse_wrong_schema() -> None:
        if check_schema:
            migrate.ensure_at_head(db)

    return Litestar(
        route_handlers=[
            TranslationController,
            SessionController,
            # Its own request-body cap (bundles.max_archive_bytes) instead of the app-wide limit below.
            toolchain_router(settings.bundles.max_archive_bytes),
            updates_router(settings.bundles.max_archive_bytes),
            healthz,
            readyz,
            list_targets,
            console,
            create_static_files_router(
                path="/static",
                directories=[STATIC_DIR],
                name="static",
                # Asset URLs carry no version: make browsers revalidate so an upgrade is never half-applied.
                cache_control=CacheControlHeader(no_cache=True),
            ),
        ],
        middleware=[RequestContextMiddleware],
        exception_handlers=EXCEPTION_HANDLERS,
        openapi_config=openapi_config(),
        state=State({"ctx": ctx}),
        on_startup=[_refuse_wrong_schema],
        request_max_body_size=settings.limits.max_request_bytes,
        response_cache_config=ResponseCacheConfig(),
        logging_config=None,
        debug=False,
    )
