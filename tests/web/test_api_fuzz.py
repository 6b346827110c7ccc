"""Schema-driven fuzzing of the whole API (schemathesis): whatever a client sends, the answer is never a 5xx, and
every error is a problem document."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.settings import load_settings
from sigforge.web.app import create_app
from sigforge.worker.broker import make_broker
from sigforge.worker.dispatch import JobDispatcher


@pytest.fixture(scope="module")
def web_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    data: Path = tmp_path_factory.mktemp("fuzz")
    config = load_settings(env={"SIGFORGE_DATA_DIR": str(data), "SIGFORGE_LIMITS_MAX_REQUEST_BYTES": "65536"})
    db = Database.from_url(config.database_url)
    migrate.upgrade(db)
    broker = make_broker(config)
    app = create_app(config, db=db, jobs=JobDispatcher(broker))
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    broker.close()
    db.dispose()


def test_no_server_errors_and_problem_details(web_schema: Any) -> None:
    """Every operation, up to 30 generated requests each (schemathesis' pytest plugin predates pytest 9)."""
    operations = [result.ok() for result in web_schema.get_all_operations()]
    calls: list[tuple[str, int]] = []
    assert len(operations) >= 8

    for operation in operations:

        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            response = case.call()
            calls.append((case.method, response.status_code))
            assert response.status_code < 500, (case.method, case.formatted_path, response.text)
            if response.status_code >= 400:
                content_type = response.headers.get("content-type") or [""]
                assert content_type[0].startswith("application/problem+json"), response.text

        check()
    methods = {method for method, _ in calls}
    assert {"GET", "POST"} <= methods and len(calls) > 100, "the fuzzer must actually exercise the API"
