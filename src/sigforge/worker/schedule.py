"""The worker pool's scheduled job: a full re-hash of every toolchain of this node, every
``toolchains.full_check_interval_s`` seconds.

``sigforge worker`` hands ``run`` to Dramatiq as a *fork function*: Dramatiq forks it beside the worker processes,
stops it with them (SIGTERM), and it needs no broker message (a periodic check must not depend on the queue being
healthy, and each node checks only the trees on its own disk). A check that finds a difference quarantines the
toolchain and writes an audit event (``ToolchainRegistry.verify``); the next job that needs it is refused.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta

from sigforge.db.session import Database
from sigforge.db.types import utcnow
from sigforge.logging import configure_logging, get_logger
from sigforge.services.context import Actor
from sigforge.services.toolchains import CheckResult, ToolchainRegistry
from sigforge.settings import load_settings
from sigforge.toolchains.runner import ProcessRunner

log = get_logger(__name__)

MAX_SLEEP_S = 60.0  # wake at least this often, so a shorter interval set later or a new import is seen soon
ACTOR = Actor("worker")


def due(registry: ToolchainRegistry, interval_s: float, now: datetime) -> list[str]:
    """Names of this node's verified toolchains whose last full check is older than ``interval_s``."""
    cutoff = now - timedelta(seconds=interval_s)
    return [
        view.name
        for view in registry.installed()
        if view.state == "verified" and (view.last_full_check_at is None or view.last_full_check_at <= cutoff)
    ]


def check_due(registry: ToolchainRegistry, interval_s: float) -> list[CheckResult]:
    """Run the full check of every toolchain that is due; one failing toolchain does not stop the others."""
    results: list[CheckResult] = []
    for name in due(registry, interval_s, utcnow()):
        [result] = registry.verify(name, ACTOR, full=True)
        results.append(result)
        log.info("toolchain.scheduled_check", name=name, ok=result.ok, problems=len(result.problems))
    return results


def run() -> int:
    """Dramatiq fork-function entry point: loop until SIGTERM (Dramatiq's handler raises SystemExit)."""
    settings = load_settings()
    configure_logging(settings.log_level, settings.log_format)
    interval = settings.toolchains.full_check_interval_s
    db = Database.from_url(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    registry = ToolchainRegistry(db, settings, ProcessRunner(network=settings.sandbox.network))
    log.info("toolchain.schedule_started", interval_s=interval, node=registry.node)
    while True:
        try:
            check_due(registry, interval)
        except Exception:  # the schedule must survive a database hiccup; the next round retries
            log.exception("toolchain.scheduled_check_failed")
        time.sleep(min(interval, MAX_SLEEP_S))
