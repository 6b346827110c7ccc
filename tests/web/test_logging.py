"""Logs are JSON lines; every line a request causes carries its request id."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from litestar.testing import TestClient

from sigforge.logging import configure_logging


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_request_lines_are_json_with_the_request_id(client: TestClient, capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("info", "json")
    capsys.readouterr()
    client.post("/api/v1/translations", json={"source": "def f(x):\n  return x[::\n", "frame_length": 8})
    client.get("/readyz", headers={"x-request-id": "trace-me-42"})
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    requests = [line for line in lines if line.get("event") == "request"]
    assert [r["status"] for r in requests] == [422, 200]
    assert requests[1]["request_id"] == "trace-me-42"
    assert all("request_id" in line for line in lines if line.get("logger", "").startswith("sigforge")), lines
