"""The API's happy path, in-process: create → queued job → (job run here) → verified, report, artifact, files."""

from __future__ import annotations

import io
import re
import tarfile

import pytest
from litestar.testing import TestClient

from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.services.context import Actor
from sigforge.services.jobs import BuildEnvironment, TranslationJob
from sigforge.settings import Settings
from support import FIR_DECIMATE, provision_toolchain


def create(client: TestClient, **extra: object) -> dict[str, object]:
    payload = {
        "source": FIR_DECIMATE,
        "target": "host-c",
        "input_dtype": "float32",
        "frame_length": 256,
    } | extra
    response = client.post("/api/v1/translations", json=payload)
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_create_stores_queues_and_audits(client: TestClient, app_db: Database, broker) -> None:  # type: ignore[no-untyped-def]
    created = create(client)
    assert created["status"] == "queued"
    assert created["entry"] == "channelize"
    assert broker.queue_stats()["translations"]["queued"] == 1
    with app_db.scope(write=False) as session:
        events = AuditRepository(session).for_subject("translation", str(created["id"]))
    assert [e.action for e in events] == ["translation.created"]
    assert events[0].request_id


def test_request_id_is_echoed_and_used(client: TestClient) -> None:
    response = client.get("/healthz", headers={"x-request-id": "abc-123"})
    assert response.headers["x-request-id"] == "abc-123"
    assert re.fullmatch(r"[0-9a-f]{32}", client.get("/healthz").headers["x-request-id"])


@pytest.mark.slow
def test_job_then_report_artifact_and_files(client: TestClient, app_db: Database, settings: Settings) -> None:
    created = create(client)
    provision_toolchain(settings)
    job = TranslationJob(app_db, BuildEnvironment.from_settings(settings, app_db), Actor("worker", job_id="j1"))
    job.run(str(created["id"]))
    assert job.run(str(created["id"])) is None, "a redelivered job must be a no-op"

    got = client.get(f"/api/v1/translations/{created['id']}").json()
    assert got["status"] == "verified", got
    assert got["max_abs_error"] is not None and got["max_abs_error"] < 1e-4
    assert got["source"] == FIR_DECIMATE

    report = client.get(f"/api/v1/translations/{created['id']}/report").json()
    assert report["verified"] is True
    assert report["max_abs_error"] == got["max_abs_error"]

    archive = client.get(f"/api/v1/translations/{created['id']}/artifact")
    assert archive.headers["content-type"] == "application/gzip"
    assert archive.headers["x-content-sha256"] == got["artifact_sha256"]
    with tarfile.open(fileobj=io.BytesIO(archive.content)) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers()}
    assert {"Makefile", "interface.json", "report.json", "MANIFEST.sha256"} <= names

    files = client.get(f"/api/v1/translations/{created['id']}/files").json()["files"]
    assert {f["path"] for f in files} == names
    makefile = client.get(f"/api/v1/translations/{created['id']}/files/Makefile")
    assert makefile.headers["content-type"].startswith("text/plain")
    assert "build/harness" in makefile.text

    with app_db.scope(write=False) as session:
        actions = [e.action for e in AuditRepository(session).for_subject("translation", str(created["id"]))]
    assert actions == ["translation.created", "translation.started", "translation.verified"]


def test_report_before_the_job_is_a_conflict(client: TestClient) -> None:
    created = create(client)
    response = client.get(f"/api/v1/translations/{created['id']}/report")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_list_is_paginated_newest_first(client: TestClient) -> None:
    ids = [create(client)["id"] for _ in range(5)]
    first = client.get("/api/v1/translations", params={"limit": 2}).json()
    assert [t["id"] for t in first["items"]] == ids[::-1][:2]
    seen = [t["id"] for t in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/api/v1/translations", params={"limit": 2, "cursor": cursor}).json()
        seen += [t["id"] for t in page["items"]]
        cursor = page["next_cursor"]
    assert seen == ids[::-1]


def test_health_and_readiness(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "checks": {}}
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["migrations"]["revision"]


def test_readiness_fails_when_schema_is_newer(client: TestClient, app_db: Database) -> None:
    with app_db.engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'zzzz'")
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert "newer" in ready.json()["checks"]["migrations"]["error"]


def test_targets(client: TestClient) -> None:
    targets = client.get("/api/v1/targets").json()["targets"]
    host = next(t for t in targets if t["name"] == "host-c")
    assert "float32" in host["input_dtypes"]
