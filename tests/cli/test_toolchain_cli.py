"""``sigforge toolchain import|list|show|verify|remove``: outputs and exit codes, against a real registry."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sigforge.settings import load_settings
from support import child_env
from toolchainkit import install_trust, make_bundle, new_keys


def _cli(data: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigforge", "toolchain", *args],
        env=child_env(SIGFORGE_DATA_DIR=str(data)),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _migrate(data: Path) -> None:
    env = child_env(SIGFORGE_DATA_DIR=str(data))
    subprocess.run([sys.executable, "-m", "sigforge", "db", "upgrade"], env=env, capture_output=True, check=True)


def test_import_list_show_verify_remove(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = new_keys()
    install_trust(load_settings(env={"SIGFORGE_DATA_DIR": str(data)}).trust_path, keys)
    _migrate(data)

    imported = _cli(data, "import", str(make_bundle(tmp_path, keys["toolchain"])))
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith("imported tinycc 1.0.0: 3 files, targets host-c")

    listing = _cli(data, "list")
    assert listing.returncode == 0 and "tinycc" in listing.stdout and "verified" in listing.stdout
    shown = json.loads(_cli(data, "show", "tinycc").stdout)
    assert shown["state"] == "verified" and shown["entry_points"][0]["version"] == "tinycc 1.0.0"
    assert [v["name"] for v in json.loads(_cli(data, "list", "--json").stdout)] == ["tinycc"]

    assert _cli(data, "verify", "--all").stdout.strip() == "tinycc: ok"
    (Path(shown["install_dir"]) / "include" / "tiny.h").write_text("changed\n")
    failed = _cli(data, "verify", "tinycc")
    assert failed.returncode == 1
    assert "tinycc: FAILED (quarantined)" in failed.stdout and "include/tiny.h: size" in failed.stdout
    assert "quarantined" in _cli(data, "list").stdout

    assert _cli(data, "remove", "tinycc").returncode == 0
    gone = _cli(data, "show", "tinycc")
    assert gone.returncode == 3 and "no toolchain named 'tinycc'" in gone.stderr


def test_rejected_and_unreadable_bundles(tmp_path: Path) -> None:
    data = tmp_path / "data"
    keys = new_keys()
    install_trust(load_settings(env={"SIGFORGE_DATA_DIR": str(data)}).trust_path, keys)
    _migrate(data)
    rejected = _cli(data, "import", str(make_bundle(tmp_path, keys["release"])))
    assert rejected.returncode == 1 and "rejected: [unknown-key]" in rejected.stderr
    missing = _cli(data, "import", str(tmp_path / "nope.bundle"))
    assert missing.returncode == 2 and "is not a file" in missing.stderr
    garbage = tmp_path / "garbage.bundle"
    garbage.write_bytes(b"not a bundle at all")
    bad = _cli(data, "import", str(garbage))
    assert bad.returncode == 1 and "rejected: [" in bad.stderr and "Traceback" not in bad.stderr
    assert "[]" == _cli(data, "list", "--json").stdout.strip()
