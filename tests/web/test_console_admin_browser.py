"""The console's sign-in in a real headless Chromium, driven over the DevTools protocol: an admin signs in with a
one-time password, is held on the password change until it is done, then sees the Updates page with this box's
version and history, and its upload form posts a bundle; the token is never in the page's storage; an engineer sees
neither the Updates page nor the admin-only toolchain controls."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from test_console_browser import CHROMIUM_FLAGS, _chromium, _free_port, wait_ready
from websockets.sync.client import ClientConnection, connect

import sigforge
from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.settings import load_settings
from sigforge.updates import HistoryRecord, record_history
from support import child_env
from userkit import TEST_PASSWORD, add_user

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

NEW_PASSWORD = "the admin's own password 7"


class Page:
    """One Chromium tab over the DevTools protocol (only what this test needs: evaluate, navigate, wait)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.last_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        self.ws.send(json.dumps({"id": self.last_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=30))
            if message.get("id") == self.last_id:
                assert "error" not in message, message
                return dict(message["result"])

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not self.js(expression):
            if time.monotonic() > deadline:
                text = self.js("document.body ? document.body.innerText : ''")
                raise AssertionError(f"timed out waiting for {expression}; the page says:\n{text[-2000:]}")
            time.sleep(0.1)

    def submit(self, form: str, **values: str) -> None:
        fill = "".join(f"document.getElementById({k!r}).value = {json.dumps(v)};" for k, v in values.items())
        self.js(f"{fill} document.getElementById({form!r}).requestSubmit(); true")

    def visible(self, element_id: str) -> bool:
        return bool(self.js(f"!document.getElementById({element_id!r}).hidden"))

    def text(self, element_id: str) -> str:
        return str(self.js(f"document.getElementById({element_id!r}).textContent"))


def _page_socket(devtools: int, deadline: float) -> str:
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{devtools}/json/list", timeout=5) as response:
                pages = [t for t in json.loads(response.read()) if t.get("type") == "page"]
            if pages:
                return str(pages[0]["webSocketDebuggerUrl"])
        except OSError:
            pass
        assert time.monotonic() < deadline, "chromium did not open its DevTools endpoint"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """A served console on a migrated database with the admin ``chief`` (one-time password, returned) and the
    engineer ``eng``, and one committed update in the history; yields (base URL, chief's one-time password).
    Shared by the tests of this module (each gets a fresh browser profile, so a fresh cookie jar)."""
    tmp_path = tmp_path_factory.mktemp("console")
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data")})
    db = Database.from_url(settings.database_url)
    try:
        migrate.upgrade(db)
        otp = add_user(db, "chief", "admin", password=None)
        add_user(db, "eng", "engineer")
    finally:
        db.dispose()
    t = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    record_history(
        settings.data_path / "updates" / "history.json",
        HistoryRecord(id="op-1", operation="apply", previous="0.0.9", target=sigforge.__version__, started=t,
                      finished=t, result="committed", reached="committed", steps=("update.verified",)),
    )  # fmt: skip
    port = _free_port()
    env = child_env(SIGFORGE_DATA_DIR=str(tmp_path / "data"), SIGFORGE_SERVER_PORT=str(port))
    serve = subprocess.Popen(
        [sys.executable, "-m", "sigforge", "serve"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_ready(f"http://127.0.0.1:{port}", serve, "sigforge serve")
        yield f"http://127.0.0.1:{port}", otp
    finally:
        os.killpg(serve.pid, signal.SIGINT)
        serve.wait(60)


@pytest.fixture
def page() -> Iterator[Page]:
    chromium = _chromium()
    devtools = _free_port()
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--remote-debugging-port={devtools}",
             "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        try:
            with connect(_page_socket(devtools, time.monotonic() + 30), max_size=None) as ws:
                yield Page(ws)
        finally:
            os.killpg(browser.pid, signal.SIGTERM)
            browser.wait(30)


def test_admin_signs_in_changes_the_one_time_password_and_sees_updates(console: tuple[str, str], page: Page) -> None:
    base, otp = console
    page.call("Page.navigate", url=f"{base}/#sign-in")
    page.wait_for("document.readyState === 'complete' && !document.getElementById('sign-in-panel').hidden")
    page.submit("sign-in-form", **{"sign-in-name": "chief", "sign-in-password": otp})

    # Held on the password change: another page is not reachable, and nothing admin-only shows yet.
    page.wait_for("!document.getElementById('password-panel').hidden")
    assert "one-time password" in page.text("password-why")
    page.js("window.location.hash = '#updates'; true")
    time.sleep(0.3)
    assert page.visible("view-sign-in") and not page.visible("view-updates")
    assert not page.visible("nav-updates-item")
    # The session lives in the HttpOnly cookie only: nothing in the page's storage, nothing script can read.
    assert page.js("localStorage.length + sessionStorage.length") == 0
    assert "sigforge_session" not in page.js("document.cookie")

    page.submit("password-form", **{"password-current": otp, "password-new": NEW_PASSWORD,
                                    "password-confirm": NEW_PASSWORD})  # fmt: skip
    page.wait_for("!document.getElementById('nav-updates-item').hidden")
    assert " ".join(page.text("account-who").split()) == "Signed in as chief (admin)"
    page.js("window.location.hash = '#updates'; true")
    page.wait_for("document.getElementById('updates-body').children.length === 1")
    assert sigforge.__version__ in page.text("updates-meta")
    assert page.text("updates-state") == "Idle"
    row = page.js("document.querySelector('#updates-body tr').innerText")
    assert "0.0.9" in row and "Committed" in row
    assert "sigforge update apply" in page.text("updates-apply-command")
    # The upload form posts the file with the cookie; this served checkout is no release layout, so the request is
    # refused (409, before any verification) and the problem is shown (a good request: tests/updates/test_requests.py).
    page.js("(function () { var dt = new DataTransfer(); dt.items.add(new File([new Uint8Array([1, 2, 3])], "
            "'sigforge-9.9.9.bundle')); document.getElementById('update-bundle').files = dt.files; "
            "document.getElementById('update-request-form').requestSubmit(); return true; })()")  # fmt: skip
    page.wait_for("!document.getElementById('updates-problem').hidden")
    assert "no current release" in page.text("updates-problem")
    assert page.js("document.getElementById('update-request').disabled") is False

    page.js("document.getElementById('sign-out').click(); true")
    page.wait_for("!document.getElementById('sign-in-link').hidden")
    assert not page.visible("nav-updates-item") and not page.visible("updates-content")


def test_an_engineer_sees_no_admin_controls(console: tuple[str, str], page: Page) -> None:
    base, _ = console
    page.call("Page.navigate", url=f"{base}/#sign-in")
    page.wait_for("document.readyState === 'complete' && !document.getElementById('sign-in-panel').hidden")
    page.submit("sign-in-form", **{"sign-in-name": "eng", "sign-in-password": TEST_PASSWORD})
    page.wait_for("!document.getElementById('account-who').hidden")
    assert " ".join(page.text("account-who").split()) == "Signed in as eng (engineer)"
    assert not page.visible("nav-updates-item")
    assert not page.visible("toolchain-import-form") and page.visible("toolchains-admin-hint")
    page.js("window.location.hash = '#updates'; true")
    page.wait_for("!document.getElementById('updates-problem').hidden")
    assert "For admins only" in page.text("updates-problem")
    assert not page.visible("updates-content")
