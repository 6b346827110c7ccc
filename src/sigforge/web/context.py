"""What controllers need from the process: settings, the database, the job queue and the toolchain registry."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from litestar import Request

from sigforge.db.session import Database
from sigforge.services.context import Actor
from sigforge.services.ports import JobQueue
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.services.users import Principal, UserService
from sigforge.settings import Settings
from sigforge.toolchains.runner import ProcessRunner


@dataclass(slots=True)
class AppContext:
    settings: Settings
    db: Database
    jobs: JobQueue
    _runner: ProcessRunner | None = field(default=None, init=False, repr=False)
    _runner_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def runner(self) -> ProcessRunner:
        """The process runner of this app, built on first use (its constructor probes the sandbox, which spawns a
        process: never at import or start-up). A failed probe is not remembered, so a fixed host recovers.

        Raises:
            SandboxError: the sandbox cannot be built as ``sandbox.network`` requires.
        """
        with self._runner_lock:
            if self._runner is None:
                self._runner = ProcessRunner(network=self.settings.sandbox.network)
            return self._runner

    def toolchains(self) -> ToolchainRegistry:
        """This node's toolchain registry (blocking: call it from a worker thread)."""
        return ToolchainRegistry(self.db, self.settings, self.runner)

    def users(self) -> UserService:
        return UserService(self.db)


def context_of(request: Request[Any, Any, Any]) -> AppContext:
    ctx = request.app.state["ctx"]
    assert isinstance(ctx, AppContext)
    return ctx


PRINCIPAL_KEY = "principal"  # where ``web.auth`` leaves the signed-in user in the request's scope state


def principal_of(request: Request[Any, Any, Any]) -> Principal | None:
    """The user the auth guard resolved for this request, if any."""
    value = request.scope.get("state", {}).get(PRINCIPAL_KEY)
    return value if isinstance(value, Principal) else None


def api_actor(request: Request[Any, Any, Any]) -> Actor:
    """The audit actor: the signed-in user's name when there is one, else ``api``."""
    request_id = request.scope.get("state", {}).get("request_id")
    principal = principal_of(request)
    return Actor(principal.name if principal else "api", request_id=request_id if isinstance(request_id, str) else None)
