"""An update requested over HTTP, end to end on a real box (pidfile mode): an admin POSTs the v2 bundle to the
running v1's API, ``sigforge up`` sees the request and launches ``sigforge update run-requests`` detached (not below
itself: the updater stops ``up`` and everything under it), which applies it with the normal ``apply`` path."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

import pytest
from releasekit import V2_REV, Box, Releases

from sigforge.db.session import Database
from sigforge.updates import STEPS
from userkit import add_user

pytestmark = pytest.mark.slow

V2_STEPS = [f"update.{s}" for s in STEPS]


def _http(box: Box, method: str, path: str, body: bytes | None, headers: dict[str, str]) -> tuple[int, Any]:
    request = urllib.request.Request(f"http://127.0.0.1:{box.port}{path}", data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def test_an_update_requested_over_http_is_applied_in_the_admins_name(box: Box, releases: Releases) -> None:
    nothing = box.update("run-requests")
    assert (nothing.returncode, nothing.stdout.strip()) == (0, "no update request is pending"), nothing.stderr
    before = box.snapshot()
    db = Database.from_url(box.database_url)
    try:
        password = add_user(db, "alice", "admin")
    finally:
        db.dispose()
    sign_in = json.dumps({"name": "alice", "password": password}).encode()
    status, session = _http(box, "POST", "/api/v1/session", sign_in, {"content-type": "application/json"})
    assert status == 201, session
    auth = {"authorization": f"Bearer {session['token']}"}

    status, request = _http(box, "POST", "/api/v1/updates", releases.v2_bundle.read_bytes(),
                            {**auth, "content-type": "application/octet-stream"})  # fmt: skip
    assert status == 202, request
    assert (request["version"], request["requested_by"]) == ("2.0.0", "alice")

    box.wait_ready("2.0.0", timeout=120)
    requests = box.data / "updates" / "requests"
    deadline = time.monotonic() + 30
    while any(requests.iterdir()) or box.journal_exists():
        assert time.monotonic() < deadline, list(requests.iterdir())
        time.sleep(0.2)
    [record] = box.history()
    assert (record["previous"], record["target"], record["result"]) == ("1.0.0", "2.0.0", "committed"), record
    assert record["actor"] == "web:alice" and record["steps"] == V2_STEPS
    assert box.audit_actions() == ["update.requested", *V2_STEPS]
    assert box.current_version() == "2.0.0"
    assert box.snapshot() == before
    assert box.schema()[0] == V2_REV
    log = (box.data / "logs" / "sigforge-update.log").read_text()
    assert "updated 1.0.0 -> 2.0.0 as requested by alice" in log, log

    # What the console shows afterwards, from the new release (the same sign-in: the database survived).
    status, view = _http(box, "GET", "/api/v1/updates", None, auth)
    assert status == 200, view
    assert (view["version"], view["state"], view["request"]) == ("2.0.0", "idle", None)
    assert (view["history"][0]["result"], view["history"][0]["actor"]) == ("committed", "web:alice")
