"""The worker pool's scheduled full re-hash of this node's toolchains."""

from __future__ import annotations

import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from sigforge.db import migrate
from sigforge.db.models import Toolchain
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.db.types import utcnow
from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.settings import load_settings
from sigforge.toolchains.runner import ProcessRunner
from sigforge.worker import schedule
from support import child_env
from toolchainkit import install_trust, make_bundle, new_keys


def _registry(tmp_path: Path, **env: str) -> ToolchainRegistry:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data"), **env})
    keys = new_keys()
    install_trust(settings.trust_path, keys)
    db = Database.from_url(settings.database_url)
    migrate.upgrade(db)
    registry = ToolchainRegistry(db, settings, ProcessRunner())
    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), Actor("test"))
    return registry


def test_only_toolchains_past_the_interval_are_due_and_checked(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    assert schedule.due(registry, 3600, utcnow()) == []  # just imported: fully checked a moment ago
    assert schedule.due(registry, 3600, utcnow() + timedelta(hours=2)) == ["tinycc"]
    with registry.db.scope() as session:
        session.execute(update(Toolchain).values(last_full_check_at=utcnow() - timedelta(hours=2)))
    [result] = schedule.check_due(registry, 3600)
    assert result.ok and result.full
    assert schedule.due(registry, 3600, utcnow()) == []


def test_a_due_check_that_finds_a_change_quarantines(tmp_path: Path) -> None:
    registry = _registry(tmp_path)
    view = registry.show("tinycc")
    (Path(view.install_dir) / "include" / "tiny.h").write_bytes(b"int t; /* changed */\n")
    with registry.db.scope() as session:
        session.execute(update(Toolchain).values(last_full_check_at=None))
    [result] = schedule.check_due(registry, 60)
    assert not result.ok and registry.show("tinycc").state == "quarantined"
    assert schedule.due(registry, 60, utcnow() + timedelta(days=1)) == []  # quarantined: nothing left to check


@pytest.mark.slow
def test_the_worker_pool_runs_the_schedule(tmp_path: Path) -> None:
    """`sigforge worker` forks the schedule beside its workers: a tampered tree is quarantined without any job."""
    registry = _registry(tmp_path)
    view = registry.show("tinycc")
    (Path(view.install_dir) / "lib" / "libtiny.a").write_bytes(b"not what was signed")
    env = child_env(SIGFORGE_DATA_DIR=str(tmp_path / "data"), SIGFORGE_TOOLCHAINS_FULL_CHECK_INTERVAL_S="0.5")
    pool = subprocess.Popen(
        [sys.executable, "-m", "sigforge", "worker", "--processes", "1", "--threads", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while registry.show("tinycc").state != "quarantined":
            assert pool.poll() is None, "the worker pool exited"
            assert time.monotonic() < deadline, "the scheduled check never ran"
            time.sleep(0.2)
    finally:
        pool.terminate()
        pool.wait(timeout=60)
    with registry.db.scope(write=False) as session:
        [event] = AuditRepository(session).recent(1, action="toolchain.quarantined")
    assert event.actor == "worker" and event.detail["problems"][0]["path"] == "lib/libtiny.a"
