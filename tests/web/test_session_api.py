"""/api/v1/session and the admin-only toolchain endpoints, through the real app on a migrated database.

Sign-in (the same 401 for an unknown user, a wrong password and a disabled account), the one-time password that
must be replaced first, the cookie, sign-out, the lockout, tokens stored hashed, and 401/403/admin on the toolchain
actions; bad input is a precise 4xx problem, never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient
from sqlalchemy import select

from sigforge.db.models import ApiToken
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.services.passwords import token_digest
from sigforge.services.users import MAX_FAILED_LOGINS
from support import assert_problem
from userkit import TEST_PASSWORD, add_user, sign_in

SESSION = "/api/v1/session"
TOOLCHAINS = "/api/v1/toolchains"
NEW_PASSWORD = "my own new password 42"


def _login(client: TestClient, name: str, password: str) -> Any:  # type: ignore[type-arg]
    return client.post(SESSION, json={"name": name, "password": password})


def test_sign_in_gives_a_token_and_a_strict_http_only_cookie(client: TestClient, app_db: Database) -> None:
    add_user(app_db, "alice")
    response = _login(client, "alice", TEST_PASSWORD)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "alice" and body["role"] == "engineer" and body["must_change_password"] is False
    assert body["token"].startswith("sft_")
    cookie = response.headers["set-cookie"].lower()
    assert "sigforge_session=" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    # the cookie alone authenticates (the console), and so does the bearer token
    me = client.get(SESSION)
    assert me.status_code == 200 and me.json()["name"] == "alice" and "token" not in me.json()
    client.cookies.clear()
    assert_problem(client.get(SESSION), 401, "unauthenticated")
    assert client.get(SESSION, headers={"authorization": f"Bearer {body['token']}"}).json()["name"] == "alice"


def test_tokens_are_stored_only_as_their_sha256(client: TestClient, app_db: Database) -> None:
    token = sign_in(client, app_db, "alice", "engineer")
    with app_db.scope(write=False) as session:
        stored = list(session.scalars(select(ApiToken.token_sha256)))
    assert stored == [token_digest(token)] and token not in stored


@pytest.mark.parametrize("case", ["unknown-user", "bad-password", "disabled"])
def test_a_failed_sign_in_says_the_same_whatever_the_reason_and_is_audited(
    client: TestClient, app_db: Database, case: str
) -> None:
    add_user(app_db, "ops", "admin")  # so "alice" may be disabled (not the last admin)
    add_user(app_db, "alice")
    if case == "disabled":
        from sigforge.services.context import Actor
        from sigforge.services.users import UserService

        UserService(app_db).set_disabled("alice", True, Actor("cli"))
    name, password = {
        "unknown-user": ("mallory", TEST_PASSWORD),
        "bad-password": ("alice", "not the password"),
        "disabled": ("alice", TEST_PASSWORD),
    }[case]
    body = assert_problem(_login(client, name, password), 401, "unauthenticated")
    assert body["detail"] == "the user name or password is wrong, or the account cannot sign in"
    assert "set-cookie" not in _login(client, name, password).headers
    with app_db.scope(write=False) as session:
        [event, *_] = AuditRepository(session).recent(action="user.login_failed")
    assert (event.subject_id, event.detail["reason"], event.actor) == (name, case, "api")


def test_repeated_bad_passwords_lock_the_account(client: TestClient, app_db: Database) -> None:
    add_user(app_db, "alice")
    for _ in range(MAX_FAILED_LOGINS):
        assert_problem(_login(client, "alice", "wrong wrong wrong"), 401, "unauthenticated")
    assert_problem(_login(client, "alice", TEST_PASSWORD), 401, "unauthenticated")  # locked: even the right one
    with app_db.scope(write=False) as session:
        reasons = [e.detail["reason"] for e in AuditRepository(session).recent(action="user.login_failed")]
    assert reasons[0] == "locked" and reasons.count("bad-password") == MAX_FAILED_LOGINS


def test_a_one_time_password_must_be_replaced_before_anything_else(client: TestClient, app_db: Database) -> None:
    otp = add_user(app_db, "boss", "admin", password=None)
    response = _login(client, "boss", otp)
    assert response.status_code == 201 and response.json()["must_change_password"] is True
    client.headers["authorization"] = f"Bearer {response.json()['token']}"
    assert client.get(SESSION).json()["must_change_password"] is True
    assert_problem(client.delete(f"{TOOLCHAINS}/nope"), 403, "password-change-required")

    change = {"current_password": "x", "new_password": NEW_PASSWORD}
    wrong = assert_problem(client.post(f"{SESSION}/password", json=change), 422, "invalid-input")
    assert wrong["pointer"] == "current_password"
    same = client.post(f"{SESSION}/password", json={"current_password": otp, "new_password": otp})
    assert assert_problem(same, 422, "invalid-input")["pointer"] == "new_password"
    short = client.post(f"{SESSION}/password", json={"current_password": otp, "new_password": "short"})
    assert "at least 12 characters" in assert_problem(short, 422, "invalid-input")["detail"]

    changed = client.post(f"{SESSION}/password", json={"current_password": otp, "new_password": NEW_PASSWORD})
    assert changed.status_code == 200 and changed.json()["must_change_password"] is False, changed.text
    assert_problem(client.delete(f"{TOOLCHAINS}/nope"), 404, "not-found")  # past the guard now
    assert _login(client, "boss", NEW_PASSWORD).status_code == 201
    assert_problem(_login(client, "boss", otp), 401, "unauthenticated")


def test_admin_actions_need_a_signed_in_admin(client: TestClient, app_db: Database) -> None:
    actions = [
        lambda: client.post(TOOLCHAINS, content=b"not a bundle", headers={"content-type": "application/octet-stream"}),
        lambda: client.post(f"{TOOLCHAINS}/nope/verify"),
        lambda: client.delete(f"{TOOLCHAINS}/nope"),
    ]
    for action in actions:
        response = action()
        assert_problem(response, 401, "unauthenticated")
        assert response.headers["www-authenticate"].startswith("Bearer")
    client.headers["authorization"] = "Bearer sft_forged"
    for action in actions:
        assert_problem(action(), 401, "unauthenticated")
    client.headers["authorization"] = "Basic b3BzOm9wcw=="
    assert_problem(actions[2](), 401, "unauthenticated")

    sign_in(client, app_db, "alice", "engineer")
    for action in actions:
        assert "admin" in assert_problem(action(), 403, "forbidden")["detail"]

    sign_in(client, app_db, "ops", "admin")
    assert_problem(actions[0](), 422, "bundle-rejected")  # past the guard: the body is judged now
    assert_problem(actions[1](), 404, "not-found")
    assert_problem(actions[2](), 404, "not-found")
    # reads stay open
    del client.headers["authorization"]
    assert client.get(TOOLCHAINS).status_code == 200 and client.get("/api/v1/targets").status_code == 200


def test_sign_out_revokes_the_token_and_clears_the_cookie(client: TestClient, app_db: Database) -> None:
    token = sign_in(client, app_db, "alice", "engineer")
    response = client.delete(SESSION)
    assert response.status_code == 204
    cookie = response.headers["set-cookie"].lower()
    assert cookie.startswith('sigforge_session="";') and "max-age=0" in cookie and "samesite=strict" in cookie
    assert_problem(client.get(SESSION), 401, "unauthenticated")
    with app_db.scope(write=False) as session:
        assert list(session.scalars(select(ApiToken))) == []
        actions = [e.action for e in AuditRepository(session).recent()][:3]
    assert actions[0] == "user.logout" and "user.login" in actions
    assert token


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({}, "/name"),
        ({"name": "alice"}, "/password"),
        ({"name": "", "password": "x"}, "/name"),
        ({"name": "a" * 65, "password": "x"}, "/name"),
        ({"name": "alice", "password": "x", "role": "admin"}, "/"),
        ({"name": 7, "password": "x"}, "/name"),
    ],
)
def test_a_malformed_sign_in_is_a_precise_400(client: TestClient, body: dict[str, Any], pointer: str) -> None:
    problem = assert_problem(client.post(SESSION, json=body), 400, "malformed-request")
    assert any(e["pointer"] == pointer for e in problem["errors"]), problem


def test_non_json_and_wrong_shapes_never_500(client: TestClient, app_db: Database) -> None:
    not_json = client.post(SESSION, content=b"{not json", headers={"content-type": "application/json"})
    assert_problem(not_json, 400, "malformed-request")
    assert_problem(client.post(SESSION, json=["alice", "pw"]), 400, "malformed-request")
    assert_problem(client.get(SESSION, headers={"authorization": "Bearer " + "x" * 5000}), 401, "unauthenticated")
    sign_in(client, app_db, "alice", "engineer")
    assert_problem(client.post(f"{SESSION}/password", json={"new_password": NEW_PASSWORD}), 400, "malformed-request")


def test_the_audit_log_names_the_signed_in_admin(client: TestClient, app_db: Database) -> None:
    sign_in(client, app_db, "ops", "admin")
    client.delete(f"{TOOLCHAINS}/nope")
    client.post(SESSION + "/password", json={"current_password": TEST_PASSWORD, "new_password": NEW_PASSWORD})
    with app_db.scope(write=False) as session:
        [changed] = AuditRepository(session).for_subject("user", "ops")[-1:]
    assert (changed.action, changed.actor) == ("user.password_changed", "ops")


def test_the_openapi_document_marks_the_routes_that_need_a_token(client: TestClient) -> None:
    doc = client.get("/schema/openapi.json").json()
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "the token from POST /api/v1/session (the console sends the session cookie instead)",
    }
    paths = doc["paths"]
    assert paths[TOOLCHAINS]["post"]["security"] == [{"bearer": []}]
    assert paths[TOOLCHAINS + "/{name}"]["delete"]["security"] == [{"bearer": []}]
    assert "security" not in paths[TOOLCHAINS]["get"] and "security" not in paths[SESSION]["post"]
    assert paths[SESSION]["get"]["security"] == [{"bearer": []}]
