"""/api/v1/translations: create, read, list, report, artifact and its files."""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.params import FromPath, JSONBody, Parameter

from sigforge.services.translations import NewTranslation, TranslationService
from sigforge.web.context import api_actor, context_of
from sigforge.web.schemas import (
    FileEntryOut,
    FilesOut,
    TranslationCreate,
    TranslationDetailOut,
    TranslationOut,
    TranslationPageOut,
)

# Generated files are shown, never run: HTML reports and SVG plots render with no script, no network and nothing but
# their own inline styles and data: images.
ARTIFACT_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox"


def _media_for(path: str, content: bytes) -> tuple[str, dict[str, str]]:
    if path.endswith(".svg"):
        return "image/svg+xml", {"content-security-policy": ARTIFACT_CSP}
    if path.endswith(".html"):
        return "text/html", {"content-security-policy": ARTIFACT_CSP}
    return ("text/plain" if _is_text(content) else "application/octet-stream"), {}


def _is_text(content: bytes) -> bool:
    """Show as text what decodes as UTF-8 and has no NUL (sources, Makefile, JSON); everything else is binary."""
    if b"\x00" in content:
        return False
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _service(request: Request[Any, Any, Any], session: Any) -> TranslationService:
    ctx = context_of(request)
    return TranslationService(
        session,
        limits=ctx.settings.limits,
        actor=api_actor(request),
        dispatch=ctx.jobs.send_translation,
    )


class TranslationController(Controller):
    path = "/api/v1/translations"
    tags = ["translations"]

    @post("/", status_code=201, sync_to_thread=True, summary="Submit an algorithm for translation")
    def create(self, request: Request[Any, Any, Any], data: JSONBody[TranslationCreate]) -> TranslationOut:
        with context_of(request).db.scope() as session:
            row = _service(request, session).create(
                NewTranslation(
                    source=data.source,
                    target=data.target,
                    input_dtype=data.input_dtype,
                    frame_length=data.frame_length,
                    entry=data.entry,
                    sample_rate=data.sample_rate,
                )
            )
            return TranslationOut.from_row(row)

    @get("/", sync_to_thread=True, summary="List translations, newest first")
    def list_translations(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 50,
        cursor: Annotated[str | None, Parameter(max_length=200)] = None,
        status: Annotated[str | None, Parameter(max_length=32)] = None,
    ) -> TranslationPageOut:
        with context_of(request).db.scope(write=False) as session:
            page = _service(request, session).page(limit=limit, cursor=cursor, status=status)
            return TranslationPageOut(
                items=[TranslationOut.from_row(r) for r in page.items], next_cursor=page.next_cursor
            )

    @get("/{translation_id:str}", sync_to_thread=True, summary="One translation, with its source")
    def get_translation(self, request: Request[Any, Any, Any], translation_id: FromPath[str]) -> TranslationDetailOut:
        with context_of(request).db.scope(write=False) as session:
            row = _service(request, session).get(translation_id)
            out = TranslationOut.from_row(row)
            return TranslationDetailOut(**{f: getattr(out, f) for f in out.__struct_fields__}, source=row.source)

    @get("/{translation_id:str}/report", sync_to_thread=True, summary="The verification report (report.json)")
    def get_report(self, request: Request[Any, Any, Any], translation_id: FromPath[str]) -> dict[str, Any]:
        with context_of(request).db.scope(write=False) as session:
            return _service(request, session).report(translation_id)

    @get(
        "/{translation_id:str}/artifact",
        sync_to_thread=True,
        summary="Download the artifact (.tar.gz)",
        response_description="a gzip'd tar of the artifact directory",
    )
    def get_artifact(self, request: Request[Any, Any, Any], translation_id: FromPath[str]) -> Response[bytes]:
        with context_of(request).db.scope(write=False) as session:
            artifact = _service(request, session).artifact(translation_id)
            content, digest = artifact.content, artifact.sha256
        return Response(
            content,
            media_type="application/gzip",
            headers={
                "content-disposition": f'attachment; filename="sigforge-{translation_id[:8]}.tar.gz"',
                "etag": f'"{digest}"',
                "x-content-sha256": digest,
            },
        )

    @get("/{translation_id:str}/files", sync_to_thread=True, summary="List the artifact's files")
    def list_files(self, request: Request[Any, Any, Any], translation_id: FromPath[str]) -> FilesOut:
        with context_of(request).db.scope(write=False) as session:
            files = _service(request, session).artifact_files(translation_id)
        return FilesOut(
            files=[
                FileEntryOut(path=p, size=len(b), sha256=hashlib.sha256(b).hexdigest())
                for p, b in sorted(files.items())
            ]
        )

    @get("/{translation_id:str}/files/{path:path}", sync_to_thread=True, summary="One file of the artifact")
    def get_file(
        self, request: Request[Any, Any, Any], translation_id: FromPath[str], path: FromPath[str]
    ) -> Response[bytes]:
        with context_of(request).db.scope(write=False) as session:
            content = _service(request, session).artifact_file(translation_id, path.lstrip("/"))
        media, headers = _media_for(path, content)
        return Response(content, media_type=media, headers=headers)
