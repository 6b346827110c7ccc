"""Old code refuses a newer schema: a v2 box will not start on a database v3 migrated; v1 will not run on v2's."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from releasekit import FAST, V2_REV, V3_REV, Releases

from support import child_env

pytestmark = pytest.mark.slow


def run(tree: Path, data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = child_env(SIGFORGE_DATA_DIR=str(data), **FAST)
    return subprocess.run([str(tree / "bin" / "sigforge"), *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize(("old", "new", "head"), [("v1", "v2", V2_REV), ("v2", "v3", V3_REV)])
def test_old_code_refuses_a_newer_schema(tmp_path: Path, releases: Releases, old: str, new: str, head: str) -> None:
    old_tree, new_tree = getattr(releases, old), getattr(releases, new)
    migrated = run(new_tree, tmp_path, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    assert f"database at {head}" in migrated.stdout
    for command in (["up"], ["serve"], ["worker"], ["db", "upgrade"]):
        result = run(old_tree, tmp_path, *command)
        assert result.returncode == 3, (command, result.stdout, result.stderr)
        assert f"the database schema (revision {head}) is newer than this sigforge understands" in result.stderr
        assert "Traceback" not in result.stderr
    assert run(new_tree, tmp_path, "db", "current").stdout.splitlines()[0] == f"current: {head}"
