"""GET /api/v1/updates through the real app on a migrated database: admin-only (401/403), the payload built from a
real update layout, history and journal (as ``sigforge update`` writes them), the lock-holder state, the prefix
derivation, and bad input as precise 4xx problems."""

from __future__ import annotations

import fcntl
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

import sigforge
from sigforge.db.session import Database
from sigforge.settings import Settings
from sigforge.updates import HistoryRecord, Journal, Step, record_history, save_journal
from sigforge.web.controllers import updates as updates_controller
from support import assert_problem
from userkit import add_user, sign_in

UPDATES = "/api/v1/updates"
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed layout: releases 1.0.0 and 1.1.0, ``current`` -> 1.1.0; the controller's prefix points at it."""
    prefix = tmp_path / "box"
    root = prefix / "opt" / "sigforge"
    for version in ("1.0.0", "1.1.0"):
        binary = root / "releases" / version / "bin" / "sigforge"
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")
        binary.chmod(0o755)
    (root / "current").symlink_to("releases/1.1.0")
    monkeypatch.setattr(updates_controller, "release_prefix", lambda: prefix)
    return prefix


def _record(n: int, result: str, **fields: Any) -> HistoryRecord:
    return HistoryRecord(
        id=f"op-{n}", operation="apply", previous="1.0.0", target="1.1.0", started=T0 + timedelta(hours=n),
        finished=T0 + timedelta(hours=n, minutes=2), result=result, **fields,  # type: ignore[arg-type]
    )  # fmt: skip


def test_needs_a_signed_in_admin(client: TestClient, app_db: Database) -> None:
    problem = assert_problem(client.get(UPDATES), 401, "unauthenticated")
    assert problem["instance"] == UPDATES
    sign_in(client, app_db, "eve", "engineer")
    assert_problem(client.get(UPDATES), 403, "forbidden")
    # an admin who has not replaced the one-time password yet
    client.headers.pop("authorization")
    otp = add_user(app_db, "newadmin", "admin", password=None)
    assert client.post("/api/v1/session", json={"name": "newadmin", "password": otp}).status_code == 201
    assert_problem(client.get(UPDATES), 403, "password-change-required")  # with the cookie, as the console sends it


def test_a_fresh_box_is_idle_and_reading_writes_nothing(
    admin_client: TestClient, settings: Settings, box: Path
) -> None:
    response = admin_client.get(UPDATES)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "version": sigforge.__version__, "current": "1.1.0", "installed": ["1.0.0", "1.1.0"], "state": "idle",
        "unfinished": None, "history": [], "history_total": 0, "request": None, "problem": None,
    }  # fmt: skip
    assert not (settings.data_path / "updates").exists()


def test_history_newest_first_and_an_interrupted_update(
    admin_client: TestClient, settings: Settings, box: Path
) -> None:
    updates = settings.data_path / "updates"
    steps = ("update.verified", "update.staged", "update.committed")
    record_history(updates / "history.json", _record(1, "rejected", reached="verified", error="bad signature"))
    record_history(updates / "history.json", _record(2, "committed", reached="committed", steps=steps))
    save_journal(
        updates / "journal.json",
        Journal(id="op-3", operation="apply", previous="1.1.0", target="1.2.0", started=T0 + timedelta(days=1),
                actor="cli:update", step=Step.STAGED, doing=Step.WORKERS_STOPPED, services="pidfile"),
    )  # fmt: skip

    body = admin_client.get(UPDATES).json()
    assert body["state"] == "needs-recover"  # a journal and nobody holding the lock
    assert body["unfinished"] == {
        "id": "op-3", "operation": "apply", "previous": "1.1.0", "target": "1.2.0",
        "started": "2026-11-02T09:00:00Z", "actor": "cli:update", "reached": "workers-stopped", "phase": "forward",
        "error": None,
    }  # fmt: skip
    assert body["history_total"] == 2
    assert [r["id"] for r in body["history"]] == ["op-2", "op-1"]
    assert body["history"][0] == {
        "id": "op-2", "operation": "apply", "previous": "1.0.0", "target": "1.1.0",
        "started": "2026-11-01T11:00:00Z", "finished": "2026-11-01T11:02:00Z", "result": "committed",
        "reached": "committed", "error": None, "steps": list(steps), "actor": None,
    }  # fmt: skip
    assert body["history"][1]["error"] == "bad signature"

    limited = admin_client.get(UPDATES, params={"limit": 1}).json()
    assert [r["id"] for r in limited["history"]] == ["op-2"] and limited["history_total"] == 2

    # an updater holding updates/.lock: the operation is running, not awaiting recovery
    fd = os.open(updates / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert admin_client.get(UPDATES).json()["state"] == "in-progress"
    finally:
        os.close(fd)
    assert admin_client.get(UPDATES).json()["state"] == "needs-recover"


def test_a_damaged_history_is_reported_not_a_500(admin_client: TestClient, settings: Settings, box: Path) -> None:
    history = settings.data_path / "updates" / "history.json"
    history.parent.mkdir(parents=True)
    history.write_text('[{"id": 1}]')
    body = admin_client.get(UPDATES).json()
    assert body["state"] == "unknown" and body["current"] == "1.1.0" and body["history"] == []
    assert "history.json" in body["problem"] and "damaged" in body["problem"]


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1"])
def test_bad_limit_is_a_precise_400(admin_client: TestClient, limit: str) -> None:
    problem = assert_problem(admin_client.get(UPDATES, params={"limit": limit}), 400, "malformed-request")
    assert problem["errors"][0]["pointer"] == "/limit", problem


def test_only_get_and_post_are_offered(admin_client: TestClient) -> None:
    # POST (an upload: tests/web/test_update_requests_api.py); nothing else, e.g. no apply-by-path
    assert_problem(admin_client.put(UPDATES, json={"bundle": "/media/usb/sigforge.bundle"}), 405, "method-not-allowed")


def test_the_prefix_is_derived_from_the_release_the_code_runs_from(tmp_path: Path) -> None:
    release = tmp_path / "opt" / "sigforge" / "releases" / "1.2.3"
    module = release / "lib" / "sigforge" / "__init__.py"
    module.parent.mkdir(parents=True)
    module.write_text("")
    (tmp_path / "opt" / "sigforge" / "current").symlink_to("releases/1.2.3")
    via_current = tmp_path / "opt" / "sigforge" / "current" / "lib" / "sigforge" / "__init__.py"
    assert updates_controller.release_prefix([via_current]) == tmp_path
    assert updates_controller.release_prefix([Path("/usr/lib/python3/sigforge/__init__.py")]) == Path("/")
    assert updates_controller.release_prefix([tmp_path / "elsewhere" / "x.py", module]) == tmp_path


def test_the_web_host_refuses_every_action() -> None:
    host = updates_controller._ServingHost()
    assert host.services_running() is True
    with pytest.raises(RuntimeError, match="sigforge update"):
        host.stop_services()
