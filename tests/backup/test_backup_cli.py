"""``sigforge backup create|verify|restore`` as a user runs it: output and exit codes."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from backupkit import box_settings, populate, read_members, write_members

from support import child_env
from toolchainkit import new_keys


def sigforge(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigforge", "backup", *args],
        env=child_env(SIGFORGE_DATA_DIR=str(data), SIGFORGE_TOOLCHAINS_NODE="node-a"),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_backup_commands_and_exit_codes(tmp_path: Path) -> None:
    data = tmp_path / "data"
    populate(box_settings(data), new_keys(), tmp_path)
    archive = tmp_path / "box.backup"

    created = sigforge(data, "create", "--out", str(archive))
    assert created.returncode == 0, created.stderr
    assert "translations: 3 rows" in created.stdout and "a new key was generated" in created.stdout
    fingerprint = created.stdout.split("signed by backup key ")[1].split()[0]
    assert len(fingerprint) == 64

    again = sigforge(data, "create", "--out", str(archive))
    assert again.returncode == 2 and "already exists" in again.stderr

    verified = sigforge(data, "verify", str(archive))
    assert verified.returncode == 0, verified.stderr
    assert verified.stdout.startswith("OK: backup") and "toolchain node-a/tinycc 1.0.0" in verified.stdout

    members = read_members(archive)
    bad = tmp_path / "bad.backup"
    write_members(bad, [(i, d.replace(b"tinycc", b"tinyCC")) if i.name.endswith("toolchains.jsonl") else (i, d)
                        for i, d in members])  # fmt: skip
    rejected = sigforge(data, "verify", str(bad))
    assert rejected.returncode == 1 and "[file-changed] db/toolchains.jsonl" in rejected.stderr

    not_empty = sigforge(data, "restore", str(archive))
    assert not_empty.returncode == 3 and "is not empty" in not_empty.stderr

    shutil.rmtree(data)
    no_key = sigforge(data, "restore", str(archive))
    assert no_key.returncode == 1 and "[untrusted-key]" in no_key.stderr and not data.exists()
    bad_fp = sigforge(data, "restore", str(archive), "--fingerprint", "abc")
    assert bad_fp.returncode == 2 and "64 hex digits" in bad_fp.stderr

    restored = sigforge(data, "restore", str(archive), "--fingerprint", fingerprint)
    assert restored.returncode == 0, restored.stderr
    assert "translations: 3 rows" in restored.stdout and "toolchain tinycc: quarantined" in restored.stdout
    assert (data / "sigforge.sqlite3").is_file() and (data / "trust" / "root.json").is_file()
