"""Bad input gets a 4xx problem detail naming the problem (and its line/column); nothing is written."""

from __future__ import annotations

import json
from typing import Any

import pytest
from litestar.testing import TestClient

from sigforge.db.repositories import AuditRepository, TranslationRepository
from sigforge.db.session import Database
from support import FIR_DECIMATE

MALFORMED = "def f(x):\n    return x[::4\n"
UNSUPPORTED_CALL = "import numpy as np\n\ndef f(x):\n    return np.sort(x)\n"
NON_LITERAL = "from scipy import signal\n\ndef f(x):\n    return signal.lfilter(signal.firwin(x, 0.2), 1.0, x)\n"


def body(**overrides: Any) -> dict[str, Any]:
    return {
        "source": FIR_DECIMATE,
        "target": "host-c",
        "input_dtype": "float32",
        "frame_length": 256,
    } | overrides


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    problem = response.json()
    assert {"type", "title", "status", "detail", "code"} <= problem.keys()
    assert problem["status"] == status
    assert "Traceback" not in response.text
    return dict(problem)


def assert_nothing_written(db: Database) -> None:
    with db.scope(write=False) as session:
        assert TranslationRepository(session).count() == 0
        assert AuditRepository(session).recent(action="translation.created") == []


@pytest.mark.parametrize(
    ("source", "line", "needle"),
    [
        (MALFORMED, 2, "malformed python"),
        (UNSUPPORTED_CALL, 4, "sort"),
        (NON_LITERAL, 4, "firwin"),
    ],
)
def test_bad_algorithm_is_refused_with_its_location(
    client: TestClient, app_db: Database, source: str, line: int, needle: str
) -> None:
    problem = assert_problem(client.post("/api/v1/translations", json=body(source=source)), 422)
    assert problem["location"]["line"] == line
    assert isinstance(problem["location"]["column"], int)
    assert needle in problem["detail"].lower()
    assert_nothing_written(app_db)


def test_unknown_target(client: TestClient, app_db: Database) -> None:
    problem = assert_problem(client.post("/api/v1/translations", json=body(target="pdp-11")), 422)
    assert "pdp-11" in problem["detail"]
    assert_nothing_written(app_db)


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        (body(frame_length="many"), "/frame_length"),
        (body(frame_length=0), "/frame_length"),
        ({"target": "host-c"}, "/source"),
        (body(surprise=1), None),
    ],
)
def test_malformed_fields(client: TestClient, app_db: Database, payload: dict[str, Any], pointer: str | None) -> None:
    problem = assert_problem(client.post("/api/v1/translations", json=payload), 400)
    if pointer:
        assert any(e["pointer"] == pointer for e in problem["errors"]), problem
    assert_nothing_written(app_db)


def test_bad_json(client: TestClient, app_db: Database) -> None:
    response = client.post(
        "/api/v1/translations", content=b'{"source": "x", ', headers={"content-type": "application/json"}
    )
    problem = assert_problem(response, 400)
    assert "not valid json" in problem["detail"].lower()
    assert_nothing_written(app_db)


def test_oversized_body(client: TestClient, app_db: Database) -> None:
    huge = json.dumps(body(source="# " + "x" * 70_000 + "\n" + FIR_DECIMATE))
    response = client.post("/api/v1/translations", content=huge, headers={"content-type": "application/json"})
    assert_problem(response, 413)
    assert_nothing_written(app_db)


def test_frame_over_the_limit(client: TestClient, app_db: Database) -> None:
    problem = assert_problem(client.post("/api/v1/translations", json=body(frame_length=10**9)), 422)
    assert problem["pointer"] == "/frame_length"
    assert_nothing_written(app_db)


def test_unknown_translation_is_a_404_problem(client: TestClient) -> None:
    problem = assert_problem(client.get("/api/v1/translations/does-not-exist"), 404)
    assert "does-not-exist" in problem["detail"]


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/nothing-here"), 404)


def test_bad_cursor_and_limit(client: TestClient) -> None:
    assert_problem(client.get("/api/v1/translations", params={"cursor": "%%%"}), 422)
    assert_problem(client.get("/api/v1/translations", params={"limit": 0}), 400)


@pytest.mark.parametrize(
    ("content", "needle"),
    [(b"[" * 50_000, "nested too deeply"), (b"", "body is required"), (b"null", "expected `object`")],
)
def test_pathological_bodies(client: TestClient, app_db: Database, content: bytes, needle: str) -> None:
    response = client.post("/api/v1/translations", content=content, headers={"content-type": "application/json"})
    problem = assert_problem(response, 400)
    assert needle in problem["detail"].lower()
    assert_nothing_written(app_db)
