"""One box, end to end: API → embedded broker → worker process → verified artifact that builds elsewhere."""

from __future__ import annotations

import io
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from e2e_support import WorkerPool, wait_for
from litestar.testing import TestClient
from scipy import signal

from sigforge.db.models import TranslationStatus
from sigforge.db.repositories import AuditRepository, TranslationRepository
from sigforge.db.session import Database
from sigforge.settings import Settings
from sigforge.web.app import create_app
from sigforge.worker.broker import make_broker
from sigforge.worker.dispatch import JobDispatcher

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("e2e")]

SOURCE = """\
import numpy as np
from scipy import signal

TAPS = signal.firwin(63, 0.1)

def channelize(x):
    y = signal.lfilter(TAPS, 1.0, x)
    return 0.5 * y[::4]
"""
FRAME = 512
TERMINAL = {s.value for s in TranslationStatus if s.terminal}


@pytest.fixture
def client(e2e_settings: Settings, e2e_db: Database) -> Iterator[TestClient]:
    broker = make_broker(e2e_settings)
    app = create_app(e2e_settings, db=e2e_db, jobs=JobDispatcher(broker))
    with TestClient(app=app, raise_server_exceptions=False) as c:
        yield c
    broker.close()


def submit(client: TestClient, frame: int = FRAME) -> str:
    response = client.post(
        "/api/v1/translations",
        json={"source": SOURCE, "target": "host-c", "input_dtype": "float32", "frame_length": frame},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def final_state(client: TestClient, translation_id: str, timeout: float = 90) -> dict[str, Any]:
    def done() -> dict[str, Any] | None:
        body = client.get(f"/api/v1/translations/{translation_id}").json()
        return body if body["status"] in TERMINAL else None

    return wait_for(done, timeout, f"translation {translation_id} to finish", interval=0.2)  # type: ignore[return-value]


@pytest.mark.parametrize("site", ["embedded", "postgres+redis", "postgres+rabbitmq"], indirect=True)
def test_fir_decimate_verified_by_a_worker_process_and_rebuilt_elsewhere(
    client: TestClient, worker_pool: WorkerPool, tmp_path: Path
) -> None:
    worker_pool.start(processes=2, threads=1)
    translation_id = submit(client)
    state = final_state(client, translation_id)
    assert state["status"] == "verified", (state, worker_pool.log.read_text()[-4000:])
    assert state["max_abs_error"] is not None and 0 <= state["max_abs_error"] < 1e-4

    archive = client.get(f"/api/v1/translations/{translation_id}/artifact").content
    elsewhere = tmp_path / "elsewhere"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(elsewhere, filter="data")
    (artifact_dir,) = list(elsewhere.iterdir())
    subprocess.run(["make"], cwd=artifact_dir, check=True, capture_output=True, timeout=120)
    harness = artifact_dir / "build" / "harness"
    assert harness.is_file()

    rng = np.random.default_rng(20261128)
    x = rng.standard_normal(FRAME * 5).astype(np.float32)
    (tmp_path / "in.bin").write_bytes(x.astype("<f4").tobytes())
    subprocess.run([harness, tmp_path / "in.bin", tmp_path / "out.bin"], check=True, timeout=60)
    got = np.frombuffer((tmp_path / "out.bin").read_bytes(), dtype="<f4")
    want = 0.5 * signal.lfilter(signal.firwin(63, 0.1), 1.0, x.astype(np.float64))[::4]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5 * max(1.0, float(np.abs(want).max())))

    assert worker_pool.stop() == 0, "the worker pool stops cleanly on SIGTERM"


def test_worker_killed_mid_job_is_redelivered_and_completes_once(
    client: TestClient, worker_pool: WorkerPool, e2e_db: Database
) -> None:
    worker_pool.start(processes=1, threads=1)
    killed: str | None = None
    for _ in range(5):  # a job can finish before we catch it running: try again with a new one
        translation_id = submit(client, frame=4096)

        def running(tid: str = translation_id) -> str | None:
            with e2e_db.scope(write=False) as session:
                row = TranslationRepository(session).get(tid)
                assert row is not None
                return row.status if row.status != "queued" else None

        if wait_for(running, 60, "the job to start", interval=0.005) == "running":
            worker_pool.kill_workers()
            killed = translation_id
            break
    assert killed is not None, "never caught a job mid-flight"
    with e2e_db.scope(write=False) as session:
        assert TranslationRepository(session).get(killed).status == "running"  # type: ignore[union-attr]

    worker_pool.start(processes=1, threads=1)
    state = final_state(client, killed)
    assert state["status"] == "verified", worker_pool.log.read_text()[-4000:]
    assert state["attempts"] == 2
    with e2e_db.scope(write=False) as session:
        actions = [e.action for e in AuditRepository(session).for_subject("translation", killed)]
    assert actions.count("translation.started") == 2
    assert actions.count("translation.verified") == 1, actions
