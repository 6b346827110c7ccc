"""POST /api/v1/updates through the real app: an admin uploads a release bundle, which is verified exactly as
``sigforge update apply`` verifies it and stored as the pending request (applied later by ``sigforge update
run-requests``, see tests/updates/test_requests.py); who may, 409 while busy or pending, and every refusal a precise
problem with nothing stored. Small synthetic release trees signed with per-module development keys."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from sigforge.bundles.build import build_bundle
from sigforge.bundles.keys import SigningKey
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.settings import Settings, load_settings
from sigforge.updates import Journal, Step, save_journal
from sigforge.web.controllers import updates as updates_controller
from support import assert_problem
from toolchainkit import install_trust, new_keys, with_bad_signature
from userkit import sign_in

UPDATES = "/api/v1/updates"
MAX_BUNDLE = 400_000  # bundles.max_archive_bytes here


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return new_keys()


@pytest.fixture
def settings(tmp_path: Path, keys: dict[str, SigningKey]) -> Settings:
    settings = load_settings(
        env={
            "SIGFORGE_DATA_DIR": str(tmp_path / "data"),
            "SIGFORGE_LIMITS_MAX_REQUEST_BYTES": "65536",
            "SIGFORGE_BUNDLES_MAX_ARCHIVE_BYTES": str(MAX_BUNDLE),
        }
    )
    install_trust(settings.trust_path, keys)
    return settings


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An installed layout, ``current`` -> 1.0.0; the controller's prefix points at it."""
    prefix = tmp_path / "box"
    binary = prefix / "opt" / "sigforge" / "releases" / "1.0.0" / "bin" / "sigforge"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    (prefix / "opt" / "sigforge" / "current").symlink_to("releases/1.0.0")
    monkeypatch.setattr(updates_controller, "release_prefix", lambda: prefix)
    return prefix


def release_bundle(tmp: Path, key: SigningKey, version: str = "2.0.0", *, expired: bool = False) -> Path:
    """A signed release bundle of a tiny release tree (an executable bin/sigforge and a payload bigger than the
    app-wide body limit, so that only the bundle cap lets it through)."""
    tree = tmp / f"tree-{version}-{os.urandom(4).hex()}"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "sigforge").write_text("#!/bin/sh\necho test release\n")
    (tree / "bin" / "sigforge").chmod(0o755)
    (tree / "lib").mkdir()
    (tree / "lib" / "payload.bin").write_bytes(os.urandom(100_000))
    now = datetime.now(UTC)
    created, expires = (now - timedelta(days=2), now - timedelta(days=1)) if expired else (
        now - timedelta(minutes=5), now + timedelta(days=30))  # fmt: skip
    out = tree.with_suffix(".bundle")
    build_bundle(source=tree, out=out, kind="release", name="sigforge", version=version, product="sigforge",
                 host_arch="any", created=created, expires=expires, keys=[key], compression="gzip")  # fmt: skip
    return out


def _upload(client: TestClient, data: bytes) -> Any:
    return client.post(UPDATES, content=data, headers={"content-type": "application/octet-stream"})


def _stored(settings: Settings) -> list[str]:
    """Everything under updates/requests and updates/requesting (the pending request, leftover uploads)."""
    updates = settings.data_path / "updates"
    return sorted(str(p.relative_to(updates)) for d in ("requests", "requesting") if (updates / d).exists()
                  for p in (updates / d).rglob("*"))  # fmt: skip


@pytest.fixture
def admin(client: TestClient, app_db: Database) -> TestClient:
    sign_in(client, app_db, "alice", "admin")
    return client


def test_needs_a_signed_in_admin(
    client: TestClient, app_db: Database, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path, box: Path
) -> None:
    data = release_bundle(tmp_path, keys["release"]).read_bytes()
    assert_problem(_upload(client, data), 401, "unauthenticated")
    sign_in(client, app_db, "eve", "engineer")
    assert_problem(_upload(client, data), 403, "forbidden")
    assert _stored(settings) == []


def test_a_good_bundle_is_verified_and_stored_as_the_pending_request(
    admin: TestClient, app_db: Database, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path, box: Path
) -> None:
    bundle = release_bundle(tmp_path, keys["release"])
    assert bundle.stat().st_size > 65536  # over the app-wide body limit: the bundle cap applies here
    response = _upload(admin, bundle.read_bytes())
    assert response.status_code == 202, response.text
    request = response.json()
    assert request["version"] == "2.0.0" and request["requested_by"] == "alice"
    rid = request["id"]
    assert _stored(settings) == [f"requests/{rid}.bundle", f"requests/{rid}.json"]  # the upload itself is gone
    requests = settings.data_path / "updates" / "requests"
    assert (requests / f"{rid}.bundle").read_bytes() == bundle.read_bytes()
    assert json.loads((requests / f"{rid}.json").read_text())["requested_by"] == "alice"

    body = admin.get(UPDATES).json()
    assert body["request"] == request and body["state"] == "idle" and body["history"] == []
    with app_db.scope() as session:
        [event] = AuditRepository(session).for_subject("update", rid)
        assert (event.actor, event.action, event.detail["version"]) == ("alice", "update.requested", "2.0.0")
    # nothing was staged or installed: the runner does that
    assert sorted(p.name for p in (box / "opt" / "sigforge" / "releases").iterdir()) == ["1.0.0"]

    # one request at a time
    again = assert_problem(_upload(admin, release_bundle(tmp_path, keys["release"], "2.1.0").read_bytes()), 409,
                           "conflict")  # fmt: skip
    assert "2.0.0" in again["detail"] and "alice" in again["detail"]
    assert _stored(settings) == [f"requests/{rid}.bundle", f"requests/{rid}.json"]


@pytest.mark.parametrize("case", ["expired", "bad-signature", "unknown-key", "rollback", "not-a-bundle", "empty"])
def test_a_refused_bundle_is_a_precise_422_and_nothing_is_stored(
    admin: TestClient, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path, box: Path, case: str
) -> None:
    data = {
        "expired": lambda: release_bundle(tmp_path, keys["release"], expired=True).read_bytes(),
        "bad-signature": lambda: with_bad_signature(release_bundle(tmp_path, keys["release"])).read_bytes(),
        "unknown-key": lambda: release_bundle(tmp_path, keys["toolchain"]).read_bytes(),
        "rollback": lambda: release_bundle(tmp_path, keys["release"], "0.9.0").read_bytes(),
        "not-a-bundle": lambda: b"this is not a bundle" * 100,
        "empty": lambda: b"",
    }[case]()
    problem = assert_problem(_upload(admin, data), 422, "bundle-rejected")
    reason = problem["evidence"]["reason"]
    if case in ("not-a-bundle", "empty"):
        assert reason in ("archive-format", "truncated"), problem
    else:
        assert reason == case, problem
    assert _stored(settings) == []
    body = admin.get(UPDATES).json()
    assert body["request"] is None
    [record] = body["history"]  # recorded like apply's rejections
    assert (record["result"], record["actor"]) == ("rejected", "alice")
    assert f"[{reason}]" in record["error"]


def test_an_oversized_upload_is_413_and_leaves_no_file(admin: TestClient, settings: Settings, box: Path) -> None:
    assert_problem(_upload(admin, os.urandom(MAX_BUNDLE + 1)), 413, "too-large")
    assert _stored(settings) == []


def test_busy_or_interrupted_is_409(
    admin: TestClient, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path, box: Path
) -> None:
    data = release_bundle(tmp_path, keys["release"]).read_bytes()
    updates = settings.data_path / "updates"
    updates.mkdir(parents=True)
    fd = os.open(updates / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # an updater runs
        assert "running" in assert_problem(_upload(admin, data), 409, "conflict")["detail"]
    finally:
        os.close(fd)
    save_journal(
        updates / "journal.json",
        Journal(id="op-1", operation="apply", previous="1.0.0", target="1.1.0", started=datetime.now(UTC),
                actor="cli:update", step=Step.STAGED, services="pidfile"),
    )  # fmt: skip
    assert "recover" in assert_problem(_upload(admin, data), 409, "conflict")["detail"]
    assert _stored(settings) == []
    assert admin.get(UPDATES).json()["history"] == []  # refused before verifying: no rejection recorded


def test_without_a_release_layout_nothing_can_be_requested(
    admin: TestClient, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(updates_controller, "release_prefix", lambda: tmp_path / "nothing-installed")
    problem = assert_problem(_upload(admin, release_bundle(tmp_path, keys["release"]).read_bytes()), 409, "conflict")
    assert "no current release" in problem["detail"]
    assert _stored(settings) == []
