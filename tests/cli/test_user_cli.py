"""``sigforge user create|list|passwd|disable|enable|bootstrap-admin``: output, exit codes, audit."""

from __future__ import annotations

import io
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sigforge.cli.main import main
from sigforge.db import migrate
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.errors import Unauthenticated
from sigforge.services.context import Actor
from sigforge.services.users import UserService
from sigforge.settings import load_settings
from support import child_env

OTP = re.compile(r"^  one-time password:  (\S+)$", re.MULTILINE)
API = Actor("api")


@pytest.fixture
def box(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Database:
    data = tmp_path / "data"
    monkeypatch.setenv("SIGFORGE_DATA_DIR", str(data))
    db = Database.from_url(load_settings(env={"SIGFORGE_DATA_DIR": str(data)}).database_url)
    migrate.upgrade(db)
    yield db  # type: ignore[misc]
    db.dispose()


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["user", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_bootstrap_admin_prints_a_one_time_password_once_and_is_idempotent(
    box: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, "bootstrap-admin")
    assert code == 0 and "created admin 'admin'" in out
    match = OTP.search(out)
    assert match, out
    otp = match.group(1)
    signed = UserService(box).sign_in("admin", otp, API)
    assert signed.principal.must_change_password and signed.principal.role == "admin"

    code, again, _ = _run(capsys, "bootstrap-admin")
    assert code == 0 and "an admin exists already (admin)" in again and not OTP.search(again)
    with box.scope(write=False) as session:
        created = AuditRepository(session).recent(action="user.created")
    assert [(e.actor, e.subject_id) for e in created] == [("cli", "admin")]


def test_create_list_disable_enable(box: Database, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "create", "alice")
    assert code == 0 and "created engineer 'alice'" in out and OTP.search(out)
    assert _run(capsys, "create", "ops", "--role", "admin")[0] == 0

    code, _, err = _run(capsys, "create", "alice")
    assert code == 1 and "exists already" in err
    code, _, err = _run(capsys, "create", "Not Valid")
    assert code == 2 and "not allowed" in err
    with pytest.raises(SystemExit) as exited:  # argparse refuses an unknown role
        main(["user", "create", "bob", "--role", "root"])
    assert exited.value.code == 2
    capsys.readouterr()

    code, listing, _ = _run(capsys, "list")
    lines = listing.splitlines()
    assert code == 0 and lines[0].split()[:3] == ["name", "role", "state"]
    assert [line.split()[:3] for line in lines[1:]] == [
        ["alice", "engineer", "must-change-password"],
        ["ops", "admin", "must-change-password"],
    ]
    assert _run(capsys, "disable", "alice")[:2] == (0, "'alice' is disabled\n")
    assert "disabled" in _run(capsys, "list")[1]
    assert _run(capsys, "enable", "alice")[:2] == (0, "'alice' is enabled\n")
    code, _, err = _run(capsys, "disable", "nobody")
    assert code == 1 and "no user named 'nobody'" in err
    _run(capsys, "disable", "alice")
    code, _, err = _run(capsys, "disable", "ops")
    assert code == 1 and "last enabled admin" in err


def test_passwd_from_stdin(box: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    _run(capsys, "create", "alice")
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    code, out, _ = _run(capsys, "passwd", "alice", "--password-stdin")
    assert code == 0 and "password of 'alice' set" in out
    signed = UserService(box).sign_in("alice", "a long enough password", API)
    assert not signed.principal.must_change_password

    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    code, _, err = _run(capsys, "passwd", "alice", "--password-stdin")
    assert code == 2 and "at least 12 characters" in err
    monkeypatch.setattr(sys, "stdin", io.StringIO("another good password\n"))
    assert _run(capsys, "passwd", "alice", "--password-stdin", "--temporary")[0] == 0
    with pytest.raises(Unauthenticated):  # setting a password signed alice out everywhere
        UserService(box).resolve(signed.token)
    assert UserService(box).sign_in("alice", "another good password", API).principal.must_change_password

    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    code, _, err = _run(capsys, "passwd", "alice")  # no terminal and no --password-stdin
    assert code == 2 and "--password-stdin" in err
    code, _, err = _run(capsys, "passwd", "nobody", "--password-stdin")
    assert code == 1 and "no user named" in err


def test_the_installed_command_bootstraps_once(tmp_path: Path) -> None:
    env = child_env(SIGFORGE_DATA_DIR=str(tmp_path / "data"))

    def sigforge(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "sigforge", *args], env=env, capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip

    assert sigforge("db", "upgrade").returncode == 0
    first, second = sigforge("user", "bootstrap-admin"), sigforge("user", "bootstrap-admin")
    assert first.returncode == 0 and len(OTP.findall(first.stdout)) == 1, first.stdout + first.stderr
    assert second.returncode == 0 and not OTP.findall(second.stdout) and "exists already" in second.stdout


def test_list_shows_a_locked_user_and_passwd_unlocks(
    box: Database, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _run(capsys, "create", "alice")
    users = UserService(box)
    for _ in range(5):
        with pytest.raises(Unauthenticated):
            users.sign_in("alice", "not her password", API)
    assert _run(capsys, "list")[1].splitlines()[1].split()[:3] == ["alice", "engineer", "locked"]
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert _run(capsys, "passwd", "alice", "--password-stdin")[0] == 0
    assert _run(capsys, "list")[1].splitlines()[1].split()[:3] == ["alice", "engineer", "active"]
    assert users.sign_in("alice", "a long enough password", API).principal.name == "alice"
