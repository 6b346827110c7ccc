"""Artifact files are served with the right type; HTML and SVG render sandboxed (no script, no network)."""

from __future__ import annotations

import uuid

from litestar.testing import TestClient

from sigforge.db.models import Translation, TranslationStatus
from sigforge.db.repositories import ArtifactRepository, TranslationRepository
from sigforge.db.session import Database
from sigforge.services.packaging import ARCHIVE_MEDIA_TYPE, pack

FILES = {
    "report.html": b"<!DOCTYPE html><title>r</title><p>ok</p>",
    "plots/error_spectrum.svg": b'<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>',
    "Makefile": b"all:\n\techo ok\n",
    "blob.bin": b"\x00\x01\x02",
}


def _stored_translation(db: Database) -> str:
    translation_id = str(uuid.uuid4())
    with db.scope() as session:
        digest = ArtifactRepository(session).put(pack(FILES, root="a"), ARCHIVE_MEDIA_TYPE)
        TranslationRepository(session).add(
            Translation(
                id=translation_id,
                status=TranslationStatus.VERIFIED,
                source="def f(x):\n    return x\n",
                source_sha256="0" * 64,
                entry="f",
                target="host-c",
                input_dtype="float32",
                frame_length=8,
                options={},
                attempts=1,
                artifact_sha256=digest,
            )
        )
    return translation_id


def test_media_types_and_sandbox(client: TestClient, app_db: Database) -> None:
    tid = _stored_translation(app_db)
    base = f"/api/v1/translations/{tid}/files"
    html = client.get(f"{base}/report.html")
    assert html.headers["content-type"].startswith("text/html")
    assert "sandbox" in html.headers["content-security-policy"]
    assert "script-src" not in html.headers["content-security-policy"]
    svg = client.get(f"{base}/plots/error_spectrum.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "sandbox" in svg.headers["content-security-policy"]
    assert client.get(f"{base}/Makefile").headers["content-type"].startswith("text/plain")
    assert client.get(f"{base}/blob.bin").headers["content-type"] == "application/octet-stream"
    assert client.get(f"{base}/nope.txt").status_code == 404
    console = client.get("/")
    assert "sandbox" not in console.headers["content-security-policy"]
