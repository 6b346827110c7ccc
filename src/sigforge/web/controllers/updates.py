"""/api/v1/updates: the updater's state for admins, and update requests (docs/updates.md).

``GET``: what ``sigforge update status`` and ``history`` print: the running version, the release ``current`` points
at, the installed releases, an unfinished operation, a pending request and the history, newest first.

``POST`` (admins): the body is a release bundle, streamed to a private file under ``<data_dir>/updates/requesting``
(cap: ``bundles.max_archive_bytes``, set on this router as for the toolchain import). ``UpdateService.request``
verifies it exactly as ``apply`` would and stores the verified copy under ``updates/requests``; 202 with the request.
Applying is NOT done here: the updater stops and restarts the service answering here, so it must run outside it —
``sigforge update run-requests``, started as root by ``sigforge-update.path``/``.service`` (systemd) or launched
detached by ``sigforge up`` (pidfile mode). Rolling back or recovering stays on the box.

The ``UpdateService`` is built as the CLI builds it, with two differences. The layout prefix, which the CLI takes
from ``--prefix`` (default ``/``), is derived from where this code runs: a release tree is
``<prefix>/opt/sigforge/releases/<version>/``; code running from anywhere else (a development checkout) uses ``/``,
the CLI's default. And the host is ``_ServingHost``, which only answers "the services run" (this process is one of
them) and refuses every action, so nothing here can stop, start or run anything.

The state: ``idle`` (no journal), ``in-progress`` (a journal, and an updater holds ``updates/.lock``),
``needs-recover`` (a journal and no lock holder: an interrupted operation; ``sigforge update recover`` finishes it),
``unknown`` (the update files cannot be read, e.g. ``updates/`` made root-only by an updater run as root; ``problem``
says why). The lock holder is found in ``/proc/locks`` (Linux) without taking the lock, which could make a starting
updater or ``recover`` believe another one runs; where that file cannot be read, a journal reads ``in-progress``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

import anyio.to_thread
from litestar import Controller, Request, Router, get, post
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Parameter
from litestar.status_codes import HTTP_202_ACCEPTED

import sigforge
from sigforge.services.context import Actor
from sigforge.services.updates import UpdateService
from sigforge.settings import Settings
from sigforge.updates import Layout, lock_held, release_prefix
from sigforge.web.auth import admin_only
from sigforge.web.context import api_actor, context_of
from sigforge.web.controllers.toolchains import _receive_bundle
from sigforge.web.openapi import BEARER
from sigforge.web.schemas import UnfinishedUpdateOut, UpdateRecordOut, UpdateRequestOut, UpdatesOut, UpdateState

PATH = "/api/v1/updates"

__all__ = ["PATH", "UpdatesController", "lock_held", "release_prefix", "update_service", "updates_router"]


@dataclass
class _ReleaseUploadOperation(Operation):
    """The request's OpenAPI operation: its body is the release bundle's bytes, which the handler streams itself."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                )
            },
            description="a signed sigforge release bundle, at most `bundles.max_archive_bytes`",
            required=True,
        )


class _ServingHost:
    """The ``UpdateHost`` of the web service: it is running (it answers), and it never acts."""

    name = "web"

    def stop_services(self) -> None:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")

    def start_services(self) -> None:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")

    def services_running(self) -> bool:
        return True

    def run_release(self, release: Path, args: Sequence[str], timeout_s: float) -> tuple[int, str]:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")

    def wait_healthy(self, version: str, timeout_s: float) -> tuple[bool, str]:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")


def update_service(settings: Settings, actor: Actor) -> UpdateService:
    """An ``UpdateService`` for this box that reads and stores requests, never acts (see the module docstring)."""
    return UpdateService(settings, Layout(release_prefix()), _ServingHost(), actor)


def _updates(settings: Settings, actor: Actor, limit: int) -> UpdatesOut:
    service = update_service(settings, actor)
    current, installed = service.layout.current_version(), service.layout.installed()
    try:
        status = service.status()
        history = service.history()
    except (OSError, ValueError) as exc:  # unreadable (permissions) or damaged update files
        return UpdatesOut(
            version=sigforge.__version__, current=current, installed=installed, state="unknown", unfinished=None,
            history=[], history_total=0, problem=f"the update files under {service.dir} cannot be read: {exc}",
        )  # fmt: skip
    state: UpdateState = "idle"
    if status.journal is not None:
        held = lock_held(service.dir / ".lock")
        state = "needs-recover" if held is False else "in-progress"
    return UpdatesOut(
        version=sigforge.__version__,
        current=status.current,
        installed=status.installed,
        state=state,
        unfinished=UnfinishedUpdateOut.from_journal(status.journal) if status.journal is not None else None,
        request=UpdateRequestOut.from_request(status.request) if status.request is not None else None,
        history=[UpdateRecordOut.from_record(r) for r in reversed(history[-limit:])],
        history_total=len(history),
    )


class UpdatesController(Controller):
    path = "/"
    tags = ["updates"]

    @get(
        "/",
        guards=[admin_only],
        security=BEARER,
        sync_to_thread=True,
        summary="The updater's state, a pending request and the history (admins)",
        description="The running version, the release `current` points at, the installed releases, the state "
        "(`idle`, `in-progress`, `needs-recover` — run `sigforge update recover` on the box — or `unknown`, with "
        "`problem`) and the update history, newest first. Updates are applied on the box with "
        "`sigforge update apply BUNDLE`, or requested with `POST /api/v1/updates`.",
    )
    def get_updates(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, Parameter(ge=1, le=1000, description="history records to return")] = 50,
    ) -> UpdatesOut:
        return _updates(context_of(request).settings, api_actor(request), limit)

    @post(
        "/",
        status_code=HTTP_202_ACCEPTED,
        guards=[admin_only],
        security=BEARER,
        operation_class=_ReleaseUploadOperation,
        summary="Request an update: upload a signed release bundle (admins)",
        description="The body is the release bundle itself (`application/octet-stream`), at most "
        "`bundles.max_archive_bytes` (413 beyond). It is verified as `sigforge update apply` verifies it "
        "(signature, expiry, anti-rollback floor, product, architecture, required upgrade stop): a refused bundle "
        "answers 422 with `evidence.reason` and is recorded in the history as `rejected`. An accepted one is stored "
        "as the pending request (202) and applied shortly by the box's update runner, in the admin's name; follow "
        "it with `GET /api/v1/updates` (the service restarts meanwhile). 409 while an update runs, an interrupted one "
        "awaits `sigforge update recover`, or a request is pending.",
    )
    async def request_update(self, request: Request[Any, Any, Any]) -> UpdateRequestOut:
        service = update_service(context_of(request).settings, api_actor(request))
        path, handle = await anyio.to_thread.run_sync(_open_upload, service)
        try:
            try:
                await _receive_bundle(request, handle)
            finally:
                await anyio.to_thread.run_sync(handle.close)
            stored = await anyio.to_thread.run_sync(service.request, path)
        finally:
            path.unlink(missing_ok=True)
        return UpdateRequestOut.from_request(stored)


def _open_upload(service: UpdateService) -> tuple[Path, BinaryIO]:
    fd, name = tempfile.mkstemp(dir=service.upload_dir(), prefix="upload-", suffix=".bundle")  # 0600, a fresh name
    return Path(name), os.fdopen(fd, "wb")


def updates_router(max_bundle_bytes: int) -> Router:
    """The update routes, with the bundle cap as their request-body limit (only the request reads a body)."""
    return Router(path=PATH, route_handlers=[UpdatesController], request_max_body_size=max_bundle_bytes)
