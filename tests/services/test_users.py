"""UserService and the password hashing, on SQLite and PostgreSQL databases built from migrations."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from sigforge.db.models import ApiToken, User
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.db.types import utcnow
from sigforge.errors import Conflict, Forbidden, InvalidInput, NotFound, PasswordChangeRequired, Unauthenticated
from sigforge.services import passwords
from sigforge.services.context import Actor
from sigforge.services.users import LOCKOUT, MAX_FAILED_LOGINS, TOKEN_LIFETIME, UserService, require_admin

CLI = Actor("cli")
API = Actor("api", request_id="req-1")
GOOD = "correct horse battery staple"


def test_hashes_carry_their_parameters_and_verify_in_constant_time() -> None:
    stored = passwords.hash_password("secret one")
    scheme, n, r, p, _salt, _key = stored.split("$")
    assert (scheme, int(n), int(r), int(p)) == ("scrypt", passwords.N, passwords.R, passwords.P)
    assert passwords.verify_password("secret one", stored)
    assert not passwords.verify_password("secret two", stored)
    assert passwords.hash_password("secret one") != stored  # salted
    assert not passwords.needs_rehash(stored)


@pytest.mark.parametrize(
    "stored",
    [
        "",
        "plain",
        "bcrypt$2$8$1$AAAA$AAAA",
        "scrypt$16384$8$1$!!$AAAA",
        "scrypt$1000$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # n not a power of 2
        "scrypt$2147483648$8$1$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # n too big
        "scrypt$16384$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  # salt too short
    ],
)
def test_a_malformed_or_hostile_hash_never_matches(stored: str) -> None:
    assert passwords.verify_password("anything", stored) is False
    assert passwords.needs_rehash(stored)


def test_one_time_passwords_and_tokens_are_random() -> None:
    otps = {passwords.one_time_password() for _ in range(50)}
    assert len(otps) == 50 and all(len(o) == 23 and o.count("-") == 3 for o in otps)
    token = passwords.new_token()
    assert token.startswith("sft_") and len(token) > 40
    assert passwords.token_digest(token) == passwords.token_digest(token) != token


def test_bootstrap_admin_once_then_never_again(db: Database) -> None:
    users = UserService(db)
    created = users.bootstrap_admin(CLI)
    assert created is not None
    view, otp = created
    assert (view.name, view.role, view.must_change_password) == ("admin", "admin", True)
    assert users.bootstrap_admin(CLI) is None
    assert users.bootstrap_admin(CLI, "second") is None
    assert [u.name for u in users.users()] == ["admin"]
    with db.scope(write=False) as session:
        [row] = session.scalars(select(User))
        assert otp not in row.password_hash and passwords.verify_password(otp, row.password_hash)
        [event] = AuditRepository(session).for_subject("user", "admin")
    assert (event.action, event.actor, event.detail) == ("user.created", "cli", {"role": "admin", "bootstrap": True})


def test_create_refuses_bad_names_roles_and_duplicates(db: Database) -> None:
    users = UserService(db)
    users.create("alice", "engineer", CLI)
    with pytest.raises(Conflict):
        users.create("alice", "admin", CLI)
    for bad in ("", "Alice", "1abc", "a b", "x" * 65, "api", "cli", "worker"):
        with pytest.raises(InvalidInput):
            users.create(bad, "engineer", CLI)
    with pytest.raises(InvalidInput, match="unknown role"):
        users.create("bob", "superuser", CLI)
    with pytest.raises(NotFound):
        users.set_disabled("nobody", True, CLI)


def test_sign_in_resolve_sign_out(db: Database) -> None:
    users = UserService(db)
    users.create("alice", "engineer", CLI)
    users.set_password("alice", GOOD, CLI)
    signed = users.sign_in("alice", GOOD, API)
    assert users.resolve(signed.token) == signed.principal
    with pytest.raises(Forbidden, match="only an admin"):
        require_admin(signed.principal)
    with db.scope(write=False) as session:
        [row] = session.scalars(select(ApiToken))
    assert row.token_sha256 == passwords.token_digest(signed.token)
    users.sign_out(signed.principal, API)
    with pytest.raises(Unauthenticated):
        users.resolve(signed.token)


def test_failed_sign_ins_are_audited_although_they_raise(db: Database) -> None:
    users = UserService(db)
    users.create("alice", "engineer", CLI)
    for name in ("alice", "nobody", "x" * 500):
        with pytest.raises(Unauthenticated):
            users.sign_in(name, "wrong password", API)
    with db.scope(write=False) as session:
        events = AuditRepository(session).recent(action="user.login_failed")
    assert [(e.subject_id, e.detail["reason"], e.request_id) for e in reversed(events)] == [
        ("alice", "bad-password", "req-1"),
        ("nobody", "unknown-user", "req-1"),
        ("x" * 64, "unknown-user", "req-1"),
    ]


def test_tokens_expire(db: Database) -> None:
    now = [utcnow()]

    def clock() -> datetime:
        return now[0]

    users = UserService(db, clock=clock)
    users.create("alice", "engineer", CLI)
    users.set_password("alice", GOOD, CLI)
    token = users.sign_in("alice", GOOD, API).token
    now[0] += TOKEN_LIFETIME - timedelta(seconds=1)
    users.resolve(token)
    now[0] += timedelta(seconds=2)
    with pytest.raises(Unauthenticated):
        users.resolve(token)


def test_disable_and_password_set_revoke_tokens_and_the_last_admin_stays(db: Database) -> None:
    users = UserService(db)
    users.create("root1", "admin", CLI)
    users.set_password("root1", GOOD, CLI)
    with pytest.raises(Conflict, match="last enabled admin"):
        users.set_disabled("root1", True, CLI)
    users.create("alice", "engineer", CLI)
    users.set_password("alice", GOOD, CLI)
    token = users.sign_in("alice", GOOD, API).token
    users.set_disabled("alice", True, CLI)
    with pytest.raises(Unauthenticated):
        users.resolve(token)
    with pytest.raises(Unauthenticated):
        users.sign_in("alice", GOOD, API)
    users.set_disabled("alice", False, CLI)
    token = users.sign_in("alice", GOOD, API).token
    users.set_password("alice", GOOD + "!", CLI, must_change=True)
    with pytest.raises(Unauthenticated):
        users.resolve(token)
    principal = users.sign_in("alice", GOOD + "!", API).principal
    with pytest.raises(PasswordChangeRequired):
        require_admin(principal)


def test_changing_ones_password_signs_out_the_other_sessions(db: Database) -> None:
    users = UserService(db)
    users.create("alice", "admin", CLI)
    users.set_password("alice", GOOD, CLI, must_change=True)
    first = users.sign_in("alice", GOOD, API)
    second = users.sign_in("alice", GOOD, API)
    assert first.principal.must_change_password
    with pytest.raises(InvalidInput, match="current password is wrong"):
        users.change_password(first.principal, "nope", "a brand new password", API)
    changed = users.change_password(first.principal, GOOD, "a brand new password", API)
    assert not changed.must_change_password and require_admin(changed)
    assert users.resolve(first.token).must_change_password is False
    with pytest.raises(Unauthenticated):
        users.resolve(second.token)
    with db.scope(write=False) as session:
        actions = [e.action for e in AuditRepository(session).for_subject("user", "alice")]
    assert actions[-2:] == ["user.password_change_failed", "user.password_changed"]


def test_a_lockout_ends_by_itself(db: Database) -> None:
    now = [utcnow()]
    users = UserService(db, clock=lambda: now[0])
    users.create("alice", "engineer", CLI)
    users.set_password("alice", GOOD, CLI)
    for _ in range(MAX_FAILED_LOGINS):
        with pytest.raises(Unauthenticated):
            users.sign_in("alice", "wrong", API)
    with pytest.raises(Unauthenticated):
        users.sign_in("alice", GOOD, API)
    now[0] += LOCKOUT + timedelta(seconds=1)
    assert users.sign_in("alice", GOOD, API).principal.name == "alice"
    with db.scope(write=False) as session:
        failed = AuditRepository(session).recent(action="user.login_failed")
    [locking] = [e for e in failed if "locked_until" in e.detail]
    assert failed[0].detail["reason"] == "locked" and locking.detail["failed_logins"] == MAX_FAILED_LOGINS
