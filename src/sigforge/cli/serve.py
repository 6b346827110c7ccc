"""``sigforge serve``, ``sigforge worker`` and ``sigforge up`` (both, supervised, Ctrl-C stops both).

``up`` is also the no-systemd (pidfile) mode's update trigger: every ``UPDATE_POLL_S`` it looks for an update
requested from the console (``<data_dir>/updates/requests``) and, when one is pending and no updater holds the
update lock, launches ``<prefix>/opt/sigforge/current/bin/sigforge update run-requests --services pidfile --prefix
<prefix>`` detached (``service_manager.launch_detached``: not below ``up``, whose processes the updater stops). The
prefix is that of the release this code runs from (``updates.release_prefix``); outside a release tree there is no
updater to launch and requests are left to ``sigforge update run-requests`` on the box. Run as a systemd unit
(``sigforge-up.service``; systemd sets ``INVOCATION_ID``), ``up`` leaves requests to ``sigforge-update.path``, whose
runner manages the services through systemd.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from sigforge.cli.db import open_database, upgrade_and_audit
from sigforge.cli.service_manager import launch_detached
from sigforge.db import migrate
from sigforge.db.session import Database
from sigforge.errors import InvalidInput
from sigforge.logging import configure_logging, get_logger
from sigforge.settings import CONFIG_ENV, Settings
from sigforge.updates import REQUESTS_DIR, Layout, load_request, lock_held, release_prefix

log = get_logger("sigforge.cli")

WORKER_STOP_TIMEOUT_S = 30.0
UPDATE_POLL_S = 2.0  # how often `up` looks for an update requested from the console
UPDATE_RELAUNCH_S = 120.0  # a launched runner that has not taken the request by then is launched again


def _self_command() -> list[str]:
    """How to run this same sigforge again (a frozen binary is its own interpreter)."""
    if getattr(sys, "frozen", False):
        return [sys.executable]
    return [sys.executable, "-m", "sigforge"]


def _positive(name: str, value: int | None) -> None:
    if value is not None and value <= 0:
        raise InvalidInput(f"--{name} must be a positive integer, got {value}")


def run_serve(settings: Settings, *, host: str | None = None, port: int | None = None) -> int:
    import uvicorn

    from sigforge.web.app import create_app
    from sigforge.worker.broker import make_broker
    from sigforge.worker.dispatch import JobDispatcher

    configure_logging(settings.log_level, settings.log_format)
    if port is not None and not 0 < port < 65536:
        raise InvalidInput(f"--port must be between 1 and 65535, got {port}")
    db = open_database(settings)
    migrate.ensure_at_head(db)
    app = create_app(settings, db=db, jobs=JobDispatcher(make_broker(settings)))
    host = host or settings.server.host
    port = port or settings.server.port
    log.info("web.starting", url=f"http://{host}:{port}")
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )
    uvicorn.Server(config).run()
    return 0


def _redispatch_stale(settings: Settings, db: Database) -> None:
    """Re-send jobs left queued without a message (the broker was down after a commit); fail lost running jobs."""
    from sigforge.services.context import Actor
    from sigforge.services.translations import TranslationService
    from sigforge.worker.broker import make_broker
    from sigforge.worker.dispatch import JobDispatcher

    broker = make_broker(settings)
    try:
        dispatcher = JobDispatcher(broker)
        with db.scope() as session:
            service = TranslationService(
                session, limits=settings.limits, actor=Actor("worker"), dispatch=dispatcher.send_translation
            )
            stale = service.redispatch_stale(older_than_s=settings.broker.redispatch_after_s)
            # Past the job time limit plus two heartbeat TTLs no worker can still be on it: the job is lost.
            lost = service.fail_lost(
                started_more_than_s=settings.broker.job_time_limit_s + 2 * settings.broker.heartbeat_ttl_s
            )
        if stale or lost:
            log.warning("jobs.recovered", redispatched=len(stale), lost=len(lost))
    finally:
        broker.close()  # before Dramatiq forks: no connection or thread of this broker may cross the fork


def _stop_with_parent(parent_pid: int) -> None:
    """Ask Linux to SIGTERM this process when its parent dies (PR_SET_PDEATHSIG), closing the race first."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent_pid:  # the parent died before the request took effect
        raise SystemExit(0)


def run_worker_pool(
    settings: Settings,
    config_file: str | None,
    *,
    processes: int | None = None,
    threads: int | None = None,
    parent_pid: int | None = None,
) -> int:
    from dramatiq.cli import main as dramatiq_main
    from dramatiq.cli import make_argument_parser

    from sigforge.worker.broker import TRANSLATIONS_QUEUE

    configure_logging(settings.log_level, settings.log_format)
    if parent_pid is not None:
        _stop_with_parent(parent_pid)
    _positive("processes", processes)
    _positive("threads", threads)
    db = open_database(settings)
    migrate.ensure_at_head(db)  # refuse before forking anything, with a readable message
    _redispatch_stale(settings, db)
    db.dispose()
    if config_file:  # the worker processes load their settings from the environment
        os.environ[CONFIG_ENV] = str(Path(config_file).resolve())
    argv = [
        "sigforge.worker.main",
        "--processes",
        str(processes or settings.broker.processes),
        "--threads",
        str(threads or settings.broker.threads),
        "--queues",
        TRANSLATIONS_QUEUE,
        "--skip-logging",
    ]
    if settings.toolchains.full_check_interval_s > 0:  # the periodic full re-hash of this node's toolchains
        argv += ["--fork-function", "sigforge.worker.schedule:run"]
    log.info("worker.starting", processes=processes or settings.broker.processes)
    parsed = make_argument_parser().parse_args(argv)  # type: ignore[no-untyped-call]
    return int(dramatiq_main(parsed) or 0)  # type: ignore[no-untyped-call]


def update_runner_command(prefix: Path, config_file: str | None) -> list[str]:
    """``sigforge update run-requests`` of the release ``current`` points at, for the layout under ``prefix``."""
    command = [str(Layout(prefix).current / "bin" / "sigforge")]
    if config_file:
        command += ["--config", str(Path(config_file).resolve())]
    return [*command, "update", "run-requests", "--services", "pidfile", "--prefix", str(prefix)]


def watch_update_requests(
    settings: Settings, config_file: str | None, stop: threading.Event, *, prefix: Path | None = None,
    poll_s: float = UPDATE_POLL_S,
) -> None:  # fmt: skip
    """Launch the update runner whenever a request is pending and no updater runs (until ``stop`` is set)."""
    if os.environ.get("INVOCATION_ID"):  # set by systemd for its units: sigforge-update.path does this job there
        log.info("update.requests.not-watched", reason="running as a systemd unit (sigforge-update.path applies them)")
        return
    prefix = prefix or release_prefix()
    command = update_runner_command(prefix, config_file)
    if not Path(command[0]).is_file():
        log.info("update.requests.not-watched", reason=f"no release layout: {command[0]} is missing")
        return
    updates = settings.data_path / "updates"
    launched = -UPDATE_RELAUNCH_S
    while not stop.wait(poll_s):
        try:
            request = load_request(updates / REQUESTS_DIR)
        except (OSError, ValueError) as exc:
            log.warning("update.requests.unreadable", error=str(exc))
            continue
        if request is None or lock_held(updates / ".lock") or time.monotonic() - launched < UPDATE_RELAUNCH_S:
            continue
        log.info("update.requests.launch", version=request.version, requested_by=request.requested_by)
        try:
            launch_detached(command, settings.data_path / "logs" / "sigforge-update.log")
        except (OSError, subprocess.SubprocessError) as exc:
            log.error("update.requests.launch-failed", error=str(exc))
        launched = time.monotonic()


def run_up(
    settings: Settings,
    config_file: str | None,
    *,
    host: str | None = None,
    port: int | None = None,
    processes: int | None = None,
    threads: int | None = None,
) -> int:
    """Migrate, start the worker pool as a child process, serve in this one; stop both on Ctrl-C/SIGTERM."""
    configure_logging(settings.log_level, settings.log_format)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    db = open_database(settings)
    state = upgrade_and_audit(db, actor="cli:up")
    db.dispose()
    log.info("db.ready", revision=state.current)
    command = [*_self_command()]
    if config_file:
        command += ["--config", str(Path(config_file).resolve())]
    command += ["worker", "--exit-with-parent", str(os.getpid())]
    if processes:
        command += ["--processes", str(processes)]
    if threads:
        command += ["--threads", str(threads)]
    # Its own session: a terminal's Ctrl-C reaches only us, and we stop the pool with exactly one SIGTERM
    # (a second one would make Dramatiq kill jobs mid-flight instead of finishing them).
    worker = subprocess.Popen(command, start_new_session=True)
    url = f"http://{host or settings.server.host}:{port or settings.server.port}"
    print(f"sigforge is up: console and API at {url}/  (data in {settings.data_path}; Ctrl-C stops)", flush=True)
    stop_watching = threading.Event()
    watcher = threading.Thread(
        target=watch_update_requests, args=(settings, config_file, stop_watching), name="update-requests", daemon=True
    )
    watcher.start()
    try:
        return run_serve(settings, host=host, port=port)
    finally:
        stop_watching.set()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(WORKER_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
        log.info("worker.stopped", returncode=worker.returncode)
