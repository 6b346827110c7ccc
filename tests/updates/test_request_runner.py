"""``UpdateService.run_request`` (what ``sigforge update run-requests`` runs) on a tiny layout with a fake host: the
pending request is applied by ``apply``'s own procedure in the admin's name and its files are deleted whatever the
outcome; a busy lock keeps it, an interrupted update drops it. Fast (no processes); the real thing end to end is
test_requests.py."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from releasekit import bundle
from sqlalchemy import text

from sigforge.bundles.keys import SigningKey
from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.errors import Conflict, IntegrityError, ServiceUnavailable
from sigforge.services.context import Actor
from sigforge.services.updates import UpdateFailed, UpdateService
from sigforge.settings import Settings, load_settings
from sigforge.updates import Journal, Layout, Step, load_history, save_journal
from toolchainkit import install_trust, new_keys


class FakeHost:
    name = "pidfile"

    def __init__(self, *, fail_stop_once: bool = False) -> None:
        self.calls: list[str] = []
        self.fail_stop_once = fail_stop_once

    def stop_services(self) -> None:
        self.calls.append("stop")
        if self.fail_stop_once:
            self.fail_stop_once = False
            raise ServiceUnavailable("the services did not stop (test)")

    def start_services(self) -> None:
        self.calls.append("start")

    def services_running(self) -> bool:
        return True

    def run_release(self, release: Path, args: Sequence[str], timeout_s: float) -> tuple[int, str]:
        self.calls.append(f"run {' '.join(args)}")
        return 0, ""

    def wait_healthy(self, version: str, timeout_s: float) -> tuple[bool, str]:
        self.calls.append(f"healthy {version}")
        return True, "ok"


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return new_keys()


@pytest.fixture
def settings(tmp_path: Path, keys: dict[str, SigningKey]) -> Settings:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data")})
    install_trust(settings.trust_path, keys)
    db = Database.from_url(settings.database_url)
    try:
        migrate.upgrade(db)  # the audit log names who requested an update
    finally:
        db.dispose()
    return settings


@pytest.fixture
def layout(tmp_path: Path) -> Layout:
    layout = Layout(tmp_path / "box")
    binary = layout.releases / "1.0.0" / "bin" / "sigforge"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\n")
    binary.chmod(0o755)
    layout.current.symlink_to("releases/1.0.0")
    return layout


@pytest.fixture
def requested(settings: Settings, layout: Layout, keys: dict[str, SigningKey], tmp_path: Path) -> list[Path]:
    """alice's request for 2.0.0, stored; returns its two files."""
    tree = tmp_path / "tree"
    (tree / "bin").mkdir(parents=True)
    (tree / "bin" / "sigforge").write_text("#!/bin/sh\n")
    (tree / "bin" / "sigforge").chmod(0o755)
    signed = bundle(tree, tmp_path / "v2.bundle", "2.0.0", keys["release"], compression="gzip")
    request = UpdateService(settings, layout, FakeHost(), Actor("alice")).request(signed)
    files = sorted((settings.data_path / "updates" / "requests").iterdir())
    assert [p.name for p in files] == [f"{request.id}.bundle", f"{request.id}.json"]
    return files


def _runner(settings: Settings, layout: Layout, host: FakeHost) -> UpdateService:
    return UpdateService(settings, layout, host, Actor("cli:update"), health_timeout_s=1)


def test_nothing_pending_is_nothing_to_do(settings: Settings, layout: Layout) -> None:
    assert _runner(settings, layout, FakeHost()).run_request() is None


def test_the_request_is_applied_in_the_admins_name_and_dropped_whatever_the_outcome(
    settings: Settings, layout: Layout, requested: list[Path]
) -> None:
    host = FakeHost(fail_stop_once=True)
    runner = _runner(settings, layout, host)
    with pytest.raises(UpdateFailed, match=r"rolled back to 1\.0\.0"):
        runner.run_request()
    [record] = load_history(settings.data_path / "updates" / "history.json")
    assert (record.actor, record.result, record.target, record.reached) == (
        "web:alice", "rolled-back", "2.0.0", "workers-stopped")  # fmt: skip
    assert host.calls == ["stop", "stop", "start", "healthy 1.0.0"]  # apply's own rollback
    assert not any(p.exists() for p in requested)
    assert runner.actor == Actor("cli:update")
    assert layout.current_version() == "1.0.0" and layout.installed() == ["1.0.0"]


def test_a_busy_lock_keeps_the_request(settings: Settings, layout: Layout, requested: list[Path]) -> None:
    fd = os.open(settings.data_path / "updates" / ".lock", os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(Conflict, match="running"):
            _runner(settings, layout, FakeHost()).run_request(lock_wait_s=0.3)
    finally:
        os.close(fd)
    assert all(p.exists() for p in requested)


def test_an_interrupted_update_drops_the_request(settings: Settings, layout: Layout, requested: list[Path]) -> None:
    save_journal(
        settings.data_path / "updates" / "journal.json",
        Journal(id="op-1", operation="apply", previous="1.0.0", target="1.1.0", started=datetime.now(UTC),
                actor="cli:update", step=Step.STAGED, services="pidfile"),
    )  # fmt: skip
    host = FakeHost()
    with pytest.raises(Conflict, match="recover"):
        _runner(settings, layout, host).run_request()
    assert not any(p.exists() for p in requested)
    assert host.calls == []


def test_the_requester_comes_from_the_audit_log_not_the_request_file(
    settings: Settings, layout: Layout, requested: list[Path]
) -> None:
    record_file = requested[1]
    record_file.write_text(record_file.read_text().replace('"alice"', '"mallory"'))  # the service user's file
    _runner(settings, layout, FakeHost()).run_request()
    [record] = load_history(settings.data_path / "updates" / "history.json")
    assert (record.actor, record.result) == ("web:alice", "committed")


def test_a_request_without_an_audit_record_is_dropped_unapplied(
    settings: Settings, layout: Layout, requested: list[Path]
) -> None:
    db = Database.from_url(settings.database_url)
    try:
        with db.engine.begin() as conn:
            conn.execute(text("DELETE FROM audit_events WHERE action = 'update.requested'"))
    finally:
        db.dispose()
    host = FakeHost()
    with pytest.raises(IntegrityError, match="no audit record"):
        _runner(settings, layout, host).run_request()
    assert host.calls == [] and not any(p.exists() for p in requested)
    assert layout.current_version() == "1.0.0"
