"""``sigforge keys`` and ``sigforge bundle`` end to end, in-process: exit codes 0/1/2/3 and one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sigforge.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_keys_then_bundle_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SIGFORGE_DATA_DIR", str(tmp_path / "data"))
    keys = tmp_path / "keys"
    for role in ("root", "release", "toolchain"):
        assert run(capsys, "keys", "generate", "--role", role, "--out", str(keys))[0] == 0
    private = {p.name.split("-")[0]: p for p in keys.glob("*.key")}
    public = {p.name.split("-")[0]: p for p in keys.glob("*.pub")}
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in private.values())
    root_file = tmp_path / "root.json"
    code, out, err = run(capsys, "keys", "rotate", "--out", str(root_file), "--expires", "2099-01-01",
                         "--root-key", str(public["root"]), "--release-key", str(public["release"]),
                         "--toolchain-key", str(public["toolchain"]), "--sign", str(private["root"]))  # fmt: skip
    assert code == 0, err
    fp = out.split("fingerprint: ")[1].strip()
    assert run(capsys, "keys", "install", str(root_file))[0] == 2  # a first root needs the fingerprint
    code, out, err = run(capsys, "keys", "install", str(root_file), "--fingerprint", fp)
    assert code == 0, err
    assert fp in run(capsys, "keys", "show")[1]

    src = tmp_path / "src"
    (src / "bin").mkdir(parents=True)
    (src / "bin/cc").write_text("#!/bin/sh\n")
    os.chmod(src / "bin/cc", 0o755)
    bundle = tmp_path / "tc.bundle"
    build = ["bundle", "build", "--kind", "toolchain", "--name", "gcc", "--version", "1.0.0", "--arch", "any",
             "--expires", "2099-01-01", "--created", "2025-01-01", "--from", str(src)]  # fmt: skip
    code, out, err = run(capsys, *build, "--key", str(private["toolchain"]), "--out", str(bundle))
    assert code == 0, err
    code, out, err = run(capsys, "bundle", "verify", str(bundle))
    assert code == 0 and out.startswith("VERIFIED"), err
    assert run(capsys, "bundle", "inspect", str(bundle))[1].startswith("NOT VERIFIED")

    wrong = tmp_path / "wrong.bundle"
    assert run(capsys, *build, "--key", str(private["release"]), "--out", str(wrong))[0] == 0
    code, out, err = run(capsys, "bundle", "verify", str(wrong))
    assert code == 1 and "[unknown-key]" in err and err.count("\n") == 1 and "Traceback" not in err
    code, out, err = run(capsys, "bundle", "verify", str(bundle), "--installed-version", "2.0.0", "--kind", "toolchain")
    assert code == 1 and "[rollback]" in err

    code, out, err = run(capsys, *build[:-4], "--expires", "next tuesday", "--from", str(src), "--key",
                         str(private["toolchain"]), "--out", str(tmp_path / "x"))  # fmt: skip
    assert code == 2 and "ISO 8601" in err
    assert run(capsys, "bundle", "verify", str(tmp_path / "absent"))[0] == 2
    assert run(capsys, "bundle", "verify", str(bundle), "--trust", str(tmp_path / "empty"))[0] == 3
