"""The ``sigforge`` command: translate's exit codes and summary, db commands, and `up` bringing the box up."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from sigforge.settings import load_settings
from support import REPO_ROOT, child_env, provision_toolchain

SOURCE = """\
from scipy import signal

TAPS = signal.firwin(31, 0.25)

def lowpass(x):
    return 2.0 * signal.lfilter(TAPS, 1.0, x)[::2]
"""


def sigforge(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sigforge", *args],
        env=child_env(**(env or {})),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_translate_verified_writes_the_artifact(tmp_path: Path) -> None:
    src = tmp_path / "lowpass.py"
    src.write_text(SOURCE)
    out = tmp_path / "out"
    provision_toolchain(load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "d")}))
    result = sigforge(
        "translate",
        str(src),
        "--target",
        "host-c",
        "--input-dtype",
        "float32",
        "--frame",
        "128",
        "--out",
        str(out),
        env={"SIGFORGE_DATA_DIR": str(tmp_path / "d")},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("VERIFIED")
    assert "max abs error" in result.stdout
    for name in ("Makefile", "interface.json", "report.json", "MANIFEST.sha256"):
        assert (out / name).is_file(), name
    assert "Traceback" not in result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["toolchain"]["cc"].startswith(str(tmp_path / "d" / "toolchains" / "host-gcc"))


def test_translate_without_a_toolchain_names_the_bundle_to_import(tmp_path: Path) -> None:
    src = tmp_path / "lowpass.py"
    src.write_text(SOURCE)
    env = {"SIGFORGE_DATA_DIR": str(tmp_path / "d")}
    result = sigforge("translate", str(src), "--frame", "128", "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 3 and "sigforge db upgrade" in result.stderr, result.stderr
    assert sigforge("db", "upgrade", env=env).returncode == 0
    result = sigforge("translate", str(src), "--frame", "128", "--out", str(tmp_path / "out"), env=env)
    assert result.returncode == 3, result.stderr
    assert "no toolchain for target 'host-c'" in result.stderr and "host-gcc" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("def f(x):\n    return x[::\n", "line 2"),
        ("import numpy as np\n\ndef f(x):\n    return np.sort(x)\n", "line 4"),
    ],
)
def test_translate_bad_input_exits_2_with_location(tmp_path: Path, source: str, expected: str) -> None:
    src = tmp_path / "bad.py"
    src.write_text(source)
    result = sigforge("translate", str(src), "--frame", "64", "--out", str(tmp_path / "out"))
    assert result.returncode == 2, result
    assert expected in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists(), "nothing is written for bad input"


def test_translate_missing_file_and_unknown_target_exit_2(tmp_path: Path) -> None:
    assert (
        sigforge("translate", str(tmp_path / "nope.py"), "--frame", "64", "--out", str(tmp_path / "o")).returncode == 2
    )
    src = tmp_path / "ok.py"
    src.write_text(SOURCE)
    result = sigforge("translate", str(src), "--target", "vax", "--frame", "64", "--out", str(tmp_path / "o"))
    assert result.returncode == 2
    assert "vax" in result.stderr


def test_bad_setting_is_one_line_exit_2(tmp_path: Path) -> None:
    result = sigforge("db", "current", env={"SIGFORGE_SERVER_PORT": "http"})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "server.port" in result.stderr


def test_db_upgrade_current_check(tmp_path: Path) -> None:
    env = {"SIGFORGE_DATA_DIR": str(tmp_path)}
    assert "status:  empty" in sigforge("db", "current", env=env).stdout
    assert sigforge("db", "upgrade", env=env).returncode == 0
    assert "status:  at_head" in sigforge("db", "current", env=env).stdout
    check = sigforge("db", "check", env=env)
    assert check.returncode == 0, check.stdout + check.stderr


def test_serve_refuses_an_unmigrated_database(tmp_path: Path) -> None:
    result = sigforge("serve", env={"SIGFORGE_DATA_DIR": str(tmp_path)}, timeout=60)
    assert result.returncode == 3
    assert "sigforge db upgrade" in result.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_make_run_brings_the_appliance_up_and_ctrl_c_stops_it(tmp_path: Path) -> None:
    port = _free_port()
    env = child_env(SIGFORGE_DATA_DIR=str(tmp_path / "data"), SIGFORGE_SERVER_PORT=str(port))
    # -o: the suite already runs inside the bootstrapped venv; do not let make reinstall it here.
    proc = subprocess.Popen(
        ["make", "--no-print-directory", "-o", ".venv/.installed", "run"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as ready:
                    assert ready.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "the appliance did not come up"
                time.sleep(0.3)
        assert proc.poll() is None, proc.communicate()[0].decode()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as console:
            assert b"sigforge" in console.read().lower()
        assert (tmp_path / "data" / "sigforge.sqlite3").is_file()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole foreground group
        output = proc.communicate(timeout=60)[0].decode()
    assert "sigforge is up" in output
    assert "Traceback" not in output
    assert "Killing worker process" not in output, "Ctrl-C must stop the workers gracefully, once"
    deadline = time.monotonic() + 30
    while True:  # the worker pool went down with the service: nothing of the group is left
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "processes of `make run` outlived it"
        time.sleep(0.2)


@pytest.mark.slow
def test_worker_pool_does_not_outlive_a_killed_up(tmp_path: Path) -> None:
    port = _free_port()
    env = child_env(SIGFORGE_DATA_DIR=str(tmp_path / "data"), SIGFORGE_SERVER_PORT=str(port))
    up = subprocess.Popen(
        [sys.executable, "-m", "sigforge", "up", "--processes", "1"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        pool: list[int] = []
        while not pool:
            assert up.poll() is None and time.monotonic() < deadline, "sigforge up did not start its worker pool"
            pool = [int(p) for p in Path(f"/proc/{up.pid}/task/{up.pid}/children").read_text().split()]
            time.sleep(0.2)
        time.sleep(2)  # let the pool finish booting its worker processes
    finally:
        up.kill()
        up.wait()
    deadline = time.monotonic() + 45
    while True:
        try:
            os.killpg(pool[0], 0)  # the pool runs in its own session: its pgid is its pid
        except ProcessLookupError:
            break
        assert time.monotonic() < deadline, "the worker pool outlived `sigforge up`"
        time.sleep(0.2)


def test_worker_and_serve_refuse_a_newer_schema(tmp_path: Path) -> None:
    env = {"SIGFORGE_DATA_DIR": str(tmp_path)}
    assert sigforge("db", "upgrade", env=env).returncode == 0
    import sqlite3

    with sqlite3.connect(tmp_path / "sigforge.sqlite3") as conn:
        conn.execute("UPDATE alembic_version SET version_num = '9999_from_v3'")
    for command in (["worker"], ["serve"], ["db", "upgrade"]):
        result = sigforge(*command, env=env, timeout=60)
        assert result.returncode == 3, (command, result.stderr)
        assert "newer than this sigforge" in result.stderr, command
        assert "Traceback" not in result.stderr


def test_queue_dead_letters_retry_and_purge_are_audited(tmp_path: Path) -> None:
    import dramatiq

    from sigforge.settings import load_settings
    from sigforge.worker.broker import make_broker

    env = {"SIGFORGE_DATA_DIR": str(tmp_path)}
    assert sigforge("db", "upgrade", env=env).returncode == 0
    broker = make_broker(load_settings(env=env))
    broker.declare_queue("translations")
    consumer = broker.consume("translations", prefetch=1, timeout=100)
    message = broker.enqueue(
        dramatiq.Message(queue_name="translations", actor_name="run_translation", args=("t-1",), kwargs={}, options={})
    )
    proxy = next(m for m in iter(consumer.__next__, "never") if m is not None)
    proxy.fail()
    consumer.nack(proxy)  # dead letter
    consumer.close()
    broker.close()

    stats = sigforge("queue", "stats", env=env)
    assert stats.returncode == 0 and "translations" in stats.stdout
    listing = sigforge("queue", "dead-letters", env=env)
    assert message.message_id in listing.stdout
    assert sigforge("queue", "retry", "no-such-id", env=env).returncode == 3
    assert sigforge("queue", "retry", message.message_id, env=env).returncode == 0
    assert message.message_id not in sigforge("queue", "dead-letters", env=env).stdout
    assert sigforge("queue", "purge", env=env).returncode == 0
    assert sigforge("queue", "stats", env={**env, "SIGFORGE_BROKER_URL": "redis://127.0.0.1:6379/12"}).returncode == 2

    import sqlite3

    with sqlite3.connect(tmp_path / "sigforge.sqlite3") as conn:
        actions = [row[0] for row in conn.execute("SELECT action FROM audit_events ORDER BY id")]
    assert actions[-2:] == ["queue.dead_letter_retried", "queue.dead_letters_purged"]
