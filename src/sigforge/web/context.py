"""What controllers need from the process: settings, the database and the job queue."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Request

from sigforge.db.session import Database
from sigforge.services.context import Actor
from sigforge.services.ports import JobQueue
from sigforge.settings import Settings


@dataclass(slots=True)
class AppContext:
    settings: Settings
    db: Database
    jobs: JobQueue


def context_of(request: Request[Any, Any, Any]) -> AppContext:
    ctx = request.app.state["ctx"]
    assert isinstance(ctx, AppContext)
    return ctx


def api_actor(request: Request[Any, Any, Any]) -> Actor:
    request_id = request.scope.get("state", {}).get("request_id")
    return Actor("api", request_id=request_id if isinstance(request_id, str) else None)
