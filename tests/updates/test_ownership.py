"""A root updater on a box whose data belongs to the service user leaves nothing root-owned behind, and runs the
releases' own commands as that user (``sigforge.updates.ownership``). Needs root (CI runs as root); skipped otherwise.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from releasekit import Box, Releases

from sigforge.cli.service_manager import PidfileServices, ProcessHost
from sigforge.updates import Owner, data_owner, hand_over

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="changing file owners needs root")

NOBODY = Owner(65534, 65534)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory every user can traverse (pytest's own temporary directories are 0700)."""
    path = Path(tempfile.mkdtemp(prefix="sigforge-owner-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _owners(root: Path) -> set[tuple[int, int]]:
    found = {(root.lstat().st_uid, root.lstat().st_gid)}
    for top, dirs, files in os.walk(root):
        for name in (*dirs, *files):
            st = os.lstat(f"{top}/{name}")
            found.add((st.st_uid, st.st_gid))
    return found


def test_hand_over_gives_a_tree_to_the_owner_and_never_follows_links(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_text("root's")
    data = tmp_path / "data"
    (data / "updates" / "backups").mkdir(parents=True)
    (data / "updates" / "history.json").write_text("[]")
    (data / "sigforge.sqlite3-wal").write_bytes(b"")
    (data / "link").symlink_to(outside)
    assert hand_over([data, tmp_path / "absent"], NOBODY) == 6
    assert _owners(data) == {(NOBODY.uid, NOBODY.gid)}
    assert outside.stat().st_uid == 0  # the link itself changed owner, not what it points to
    assert hand_over([data], NOBODY) == 0  # nothing left to change
    assert hand_over([data], None) == 0


def test_data_owner_is_the_directory_owner_unless_that_is_root(tmp_path: Path) -> None:
    assert data_owner(tmp_path) is None
    os.chown(tmp_path, NOBODY.uid, NOBODY.gid)
    assert data_owner(tmp_path) == NOBODY
    assert data_owner(tmp_path / "absent") is None


def test_release_commands_and_pidfile_services_run_as_the_owner(shared_dir: Path) -> None:
    release = shared_dir / "release"
    (release / "bin").mkdir(parents=True)
    script = release / "bin" / "sigforge"
    script.write_text('#!/bin/sh\necho "$(id -u) $(id -g) $(id -G)"\n')
    script.chmod(0o755)
    data = shared_dir / "data"
    data.mkdir()
    services = PidfileServices(release, data, run_as=NOBODY)
    host = ProcessHost(services, ready_url="http://127.0.0.1:9/readyz", env={"PATH": "/usr/bin:/bin"}, run_as=NOBODY)
    code, output = host.run_release(release, ["db", "upgrade"], 30)
    assert (code, output.strip()) == (0, "65534 65534 65534")
    services.start()  # the fake `up` prints and exits; its log shows who it ran as
    log = data / "logs" / "sigforge-up.log"
    deadline = time.monotonic() + 30
    while not log.read_text().strip() and time.monotonic() < deadline:
        time.sleep(0.05)
    services.stop()
    assert (data / "logs" / "sigforge-up.log").read_text().strip() == "65534 65534 65534"


def test_a_root_updater_leaves_nothing_root_owned_in_the_data_directory(box: Box, releases: Releases) -> None:
    for top, dirs, files in os.walk(box.data):  # the box's data belongs to the service user, as on a systemd box
        for name in (*dirs, *files):
            os.chown(f"{top}/{name}", NOBODY.uid, NOBODY.gid, follow_symlinks=False)
    os.chown(box.data, NOBODY.uid, NOBODY.gid)
    result = box.update("apply", str(releases.v2_expired))  # rejected: the updater writes its history as root
    assert result.returncode == 1, result.stdout + result.stderr
    assert (box.data / "updates" / "history.json").is_file()
    root_owned = [str(p) for p in box.data.rglob("*") if p.lstat().st_uid != NOBODY.uid]
    assert root_owned == []
