"""/api/v1/toolchains: this node's toolchain registry (list, show, import a signed bundle, verify, remove).

The import takes the bundle as the raw request body (``application/octet-stream``). The body is streamed to a
private file under ``<toolchains dir>/.incoming`` (never held in memory), then handed to the registry, which copies,
verifies, extracts and registers it; the uploaded file is removed afterwards whatever happened. The body cap is
``bundles.max_archive_bytes``, not the app-wide ``limits.max_request_bytes``: ``toolchain_router`` sets it on the
router that holds this controller (Litestar's per-layer ``request_max_body_size``; only the import reads a body),
and Litestar answers 413 as soon as a ``Content-Length`` or the bytes received pass it.

Everything that touches the disk, the database or the sandbox runs in a worker thread, off the event loop.

Import, verify and remove are admin actions (``web.auth.admin_only``: 401 without a valid token, 403 for a non-admin
or before a one-time password was replaced); listing and showing stay open.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import anyio.to_thread
from litestar import Controller, Request, Router, delete, get, post
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import FromPath
from litestar.status_codes import HTTP_201_CREATED, HTTP_204_NO_CONTENT

from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainView
from sigforge.web.auth import admin_only
from sigforge.web.context import AppContext, api_actor, context_of
from sigforge.web.openapi import BEARER
from sigforge.web.schemas import ToolchainOut, ToolchainsOut, VerifyOut

PATH = "/api/v1/toolchains"
INCOMING = ".incoming"  # the registry's own staging directory: uploads sit beside its local copies
WRITE_CHUNK = 1024**2  # bytes buffered before one write to the upload file (so memory use stays bounded)


@dataclass
class _BundleUploadOperation(Operation):
    """The import's OpenAPI operation: its body is the bundle's bytes, which the handler streams itself."""

    def __post_init__(self) -> None:
        self.request_body = RequestBody(
            content={
                "application/octet-stream": OpenAPIMediaType(
                    schema=Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)
                )
            },
            description="a signed toolchain bundle (as built by `sigforge bundle build` / installer/toolchains), "
            "at most `bundles.max_archive_bytes`",
            required=True,
        )


def _open_upload(ctx: AppContext) -> tuple[Path, BinaryIO]:
    incoming = ctx.settings.toolchains_path / INCOMING
    incoming.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=incoming, prefix="upload-", suffix=".bundle")  # 0600, a fresh name
    return Path(name), os.fdopen(fd, "wb")


def _import(ctx: AppContext, bundle: Path, actor: Actor) -> ToolchainView:
    return ctx.toolchains().import_bundle(bundle, actor)


async def _receive_bundle(request: Request[Any, Any, Any], handle: BinaryIO) -> None:
    """Copy the request body into ``handle``, writing in ``WRITE_CHUNK`` pieces from a worker thread.

    Raises:
        RequestEntityTooLarge: (from Litestar's stream) the body is over this route's ``request_max_body_size``.
    """
    buffer = bytearray()
    async for chunk in request.stream():
        buffer += chunk
        if len(buffer) >= WRITE_CHUNK:
            await anyio.to_thread.run_sync(handle.write, bytes(buffer))
            buffer.clear()
    if buffer:
        await anyio.to_thread.run_sync(handle.write, bytes(buffer))


class ToolchainController(Controller):
    path = "/"
    tags = ["toolchains"]

    @get("/", sync_to_thread=True, summary="Toolchains installed on this node, with their state")
    def list_toolchains(self, request: Request[Any, Any, Any]) -> ToolchainsOut:
        views = context_of(request).toolchains().installed()
        return ToolchainsOut(toolchains=[ToolchainOut.from_view(v) for v in views])

    @get("/{name:str}", sync_to_thread=True, summary="One toolchain of this node")
    def get_toolchain(self, request: Request[Any, Any, Any], name: FromPath[str]) -> ToolchainOut:
        return ToolchainOut.from_view(context_of(request).toolchains().show(name))

    @post(
        "/",
        status_code=HTTP_201_CREATED,
        summary="Import a signed toolchain bundle (the request body)",
        description="The body is the bundle file itself (`application/octet-stream`), at most "
        "`bundles.max_archive_bytes` (413 beyond). It is verified against this box's trust root before anything is "
        "installed: a refused bundle answers 422 with `evidence.reason` naming the failed check. Importing a newer "
        "version replaces the installed one.",
        operation_class=_BundleUploadOperation,
        guards=[admin_only],
        security=BEARER,
    )
    async def import_toolchain(self, request: Request[Any, Any, Any]) -> ToolchainOut:
        ctx = context_of(request)
        actor = api_actor(request)
        path, handle = await anyio.to_thread.run_sync(_open_upload, ctx)
        try:
            try:
                await _receive_bundle(request, handle)
            finally:
                await anyio.to_thread.run_sync(handle.close)
            view = await anyio.to_thread.run_sync(_import, ctx, path, actor)
        finally:
            path.unlink(missing_ok=True)
        return ToolchainOut.from_view(view)

    @post(
        "/{name:str}/verify",
        status_code=200,
        sync_to_thread=True,
        summary="Re-hash every file of a toolchain now (quarantines it on any difference)",
        guards=[admin_only],
        security=BEARER,
        description="Answers 200 either way: `ok` false lists the problems, and the toolchain is quarantined from "
        "then on (only a re-import clears that).",
    )
    def verify_toolchain(self, request: Request[Any, Any, Any], name: FromPath[str]) -> VerifyOut:
        [result] = context_of(request).toolchains().verify(name, api_actor(request), full=True)
        return VerifyOut.from_result(result)

    @delete(
        "/{name:str}",
        status_code=HTTP_204_NO_CONTENT,
        sync_to_thread=True,
        summary="Remove a toolchain",
        guards=[admin_only],
        security=BEARER,
    )
    def remove_toolchain(self, request: Request[Any, Any, Any], name: FromPath[str]) -> None:
        context_of(request).toolchains().remove(name, api_actor(request))


def toolchain_router(max_bundle_bytes: int) -> Router:
    """The toolchain routes, with the bundle cap as their request-body limit (see the module docstring)."""
    return Router(path=PATH, route_handlers=[ToolchainController], request_max_body_size=max_bundle_bytes)
