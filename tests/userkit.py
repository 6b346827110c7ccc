"""Users for tests: create one as the CLI would, and sign a test client in through the API."""

from __future__ import annotations

from litestar.testing import TestClient

from sigforge.db.session import Database
from sigforge.services.context import Actor
from sigforge.services.users import UserService

TEST_PASSWORD = "a test password, long enough"
CLI = Actor("cli")


def add_user(db: Database, name: str, role: str = "engineer", password: str | None = TEST_PASSWORD) -> str:
    """Create ``name`` and return its password: ``password``, or the one-time one when None (must be changed)."""
    users = UserService(db)
    _, otp = users.create(name, role, CLI)
    if password is None:
        return otp
    users.set_password(name, password, CLI)
    return password


def sign_in(client: TestClient, db: Database, name: str, role: str = "admin") -> str:  # type: ignore[type-arg]
    """Create the user, sign in through the API and send the token from then on (not the cookie); returns it."""
    password = add_user(db, name, role)
    response = client.post("/api/v1/session", json={"name": name, "password": password})
    assert response.status_code == 201, response.text
    token = str(response.json()["token"])
    client.cookies.clear()
    client.headers["authorization"] = f"Bearer {token}"
    return token
