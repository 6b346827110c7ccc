"""Liveness, readiness, targets and the console page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from litestar import Request, Response, get
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

import sigforge
from sigforge.db import migrate
from sigforge.dsp import pipeline
from sigforge.errors import DomainError
from sigforge.services.toolchains import ToolchainView
from sigforge.web.context import context_of
from sigforge.web.schemas import HealthOut, TargetOut, TargetsOut

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
TARGET_DESCRIPTIONS = {
    "host-c": "C99 for the host CPU, built with the host C compiler and verified natively in a sandbox",
}


@get("/healthz", sync_to_thread=False, summary="Liveness: the process answers", tags=["health"])
def healthz() -> HealthOut:
    return HealthOut(status="ok")


def _probe(checks: dict[str, Any], name: str, fn: Callable[[], Any]) -> bool:
    try:
        checks[name] = fn() or "ok"
    except DomainError as exc:
        checks[name] = {"error": str(exc)}
        return False
    return True


@get("/readyz", sync_to_thread=True, summary="Readiness: database, schema and broker", tags=["health"])
def readyz(request: Request[Any, Any, Any]) -> Response[HealthOut]:
    ctx = context_of(request)
    checks: dict[str, Any] = {}
    ready = _probe(checks, "database", ctx.db.ping)
    ready = ready and _probe(checks, "migrations", lambda: {"revision": migrate.ensure_at_head(ctx.db).current})
    ready = _probe(checks, "broker", ctx.jobs.ping) and ready
    return Response(
        HealthOut(status="ready" if ready else "not-ready", checks=checks),
        status_code=HTTP_200_OK if ready else HTTP_503_SERVICE_UNAVAILABLE,
        headers={"x-sigforge-version": sigforge.__version__},  # the updater checks which release answers
    )


def _toolchain_for(target: str, installed: list[ToolchainView]) -> ToolchainView | None:
    """The toolchain that would build ``target`` here: a verified one first, else a quarantined one (to say so)."""
    candidates = [v for v in installed if target in v.targets]
    verified = [v for v in candidates if v.state == "verified"]
    return next(iter(verified or candidates), None)


@get(
    "/api/v1/targets",
    sync_to_thread=True,
    summary="Targets this node can translate for, and the toolchain that builds each here",
    description="`toolchain_state` is `verified` when this node holds a verified toolchain for the target, "
    "`quarantined` when its only one failed a check, and null when none is installed (translations for it fail "
    "until a toolchain bundle is imported).",
    tags=["targets"],
)
def list_targets(request: Request[Any, Any, Any]) -> TargetsOut:
    installed = context_of(request).toolchains().installed()
    targets = []
    for name in pipeline.SUPPORTED_TARGETS:
        toolchain = _toolchain_for(name, installed)
        targets.append(
            TargetOut(
                name=name,
                description=TARGET_DESCRIPTIONS.get(name, name),
                input_dtypes=list(pipeline.SUPPORTED_INPUT_DTYPES),
                toolchain=toolchain.name if toolchain else None,
                toolchain_state=toolchain.state if toolchain else None,
            )
        )
    return TargetsOut(targets=targets)


@get("/", sync_to_thread=False, include_in_schema=False)
def console() -> Response[bytes]:
    page = (STATIC_DIR / "console" / "index.html").read_bytes()
    return Response(page, media_type="text/html", headers={"cache-control": "no-cache"})
