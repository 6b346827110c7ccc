"""/api/v1/updates: the updater's state for admins, read-only (docs/updates.md).

What ``sigforge update status`` and ``history`` print: the running version, the release ``current`` points at, the
installed releases, an unfinished operation and the history, newest first. Applying, rolling back or recovering
stays on the box (``sigforge update apply BUNDLE``): the updater stops and restarts the service answering here, so it
must run outside it.

The ``UpdateService`` is built as the CLI builds it, with two differences. The layout prefix, which the CLI takes
from ``--prefix`` (default ``/``), is derived from where this code runs: a release tree is
``<prefix>/opt/sigforge/releases/<version>/``; code running from anywhere else (a development checkout) uses ``/``,
the CLI's default. And the host is ``_ServingHost``, which only answers "the services run" (this process is one of
them) and refuses every action, so nothing here can stop, start or run anything.

The state: ``idle`` (no journal), ``in-progress`` (a journal, and an updater holds ``updates/.lock``),
``needs-recover`` (a journal and no lock holder: an interrupted operation; ``sigforge update recover`` finishes it),
``unknown`` (the update files cannot be read, e.g. ``updates/`` made root-only by an updater run as root; ``problem``
says why). The lock holder is found in ``/proc/locks`` (Linux) without taking the lock, which could make a starting
updater or ``recover`` believe another one runs; where that file cannot be read, a journal reads ``in-progress``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import Parameter

import sigforge
from sigforge.services.context import Actor
from sigforge.services.updates import UpdateService
from sigforge.settings import Settings
from sigforge.updates import Layout
from sigforge.web.auth import admin_only
from sigforge.web.context import api_actor, context_of
from sigforge.web.openapi import BEARER
from sigforge.web.schemas import UnfinishedUpdateOut, UpdateRecordOut, UpdatesOut, UpdateState

PATH = "/api/v1/updates"
PROC_LOCKS = Path("/proc/locks")


class _ServingHost:
    """The ``UpdateHost`` of the web service: it is running (it answers), and it never acts."""

    name = "web"

    def stop_services(self) -> None:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")

    def start_services(self) -> None:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")

    def services_running(self) -> bool:
        return True

    def run_release(self, release: Path, args: Sequence[str], timeout_s: float) -> tuple[int, str]:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")

    def wait_healthy(self, version: str, timeout_s: float) -> tuple[bool, str]:
        raise RuntimeError("the web service does not run updates: use `sigforge update` on the box")


def release_prefix(code: Sequence[Path] | None = None) -> Path:
    """The layout prefix of the release this code runs from (``<prefix>/opt/sigforge/releases/<version>/...``), or
    ``/`` (the CLI's default) when it does not run from a release tree."""
    candidates = code if code is not None else (Path(sigforge.__file__), Path(sys.executable))
    for path in candidates:
        try:
            resolved = path.resolve()
        except OSError:
            continue
        for release in resolved.parents:
            releases = release.parent
            if (
                releases.name == "releases"
                and releases.parent.name == "sigforge"
                and releases.parent.parent.name == "opt"
            ):
                return releases.parent.parent.parent
    return Path("/")


def update_service(settings: Settings, actor: Actor) -> UpdateService:
    """A read-only ``UpdateService`` for this box (see the module docstring)."""
    return UpdateService(settings, Layout(release_prefix()), _ServingHost(), actor)


def lock_held(lock: Path, proc_locks: Path = PROC_LOCKS) -> bool | None:
    """Whether some process holds a lock on ``lock`` (from ``/proc/locks``, never by locking); None if unknowable."""
    try:
        st = lock.stat()
    except FileNotFoundError:
        return False  # never created: no updater ever ran here
    except OSError:
        return None
    try:
        table = proc_locks.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    needle = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; a blocked waiter's line starts with "1: ->".
    return any(needle in line.split() for line in table.splitlines() if "->" not in line)


def _updates(settings: Settings, actor: Actor, limit: int) -> UpdatesOut:
    service = update_service(settings, actor)
    current, installed = service.layout.current_version(), service.layout.installed()
    try:
        status = service.status()
        history = service.history()
    except (OSError, ValueError) as exc:  # unreadable (permissions) or damaged update files
        return UpdatesOut(
            version=sigforge.__version__, current=current, installed=installed, state="unknown", unfinished=None,
            history=[], history_total=0, problem=f"the update files under {service.dir} cannot be read: {exc}",
        )  # fmt: skip
    state: UpdateState = "idle"
    if status.journal is not None:
        held = lock_held(service.dir / ".lock")
        state = "needs-recover" if held is False else "in-progress"
    return UpdatesOut(
        version=sigforge.__version__,
        current=status.current,
        installed=status.installed,
        state=state,
        unfinished=UnfinishedUpdateOut.from_journal(status.journal) if status.journal is not None else None,
        history=[UpdateRecordOut.from_record(r) for r in reversed(history[-limit:])],
        history_total=len(history),
    )


class UpdatesController(Controller):
    path = PATH
    tags = ["updates"]

    @get(
        "/",
        guards=[admin_only],
        security=BEARER,
        sync_to_thread=True,
        summary="The updater's state and history (admins; read-only)",
        description="The running version, the release `current` points at, the installed releases, the state "
        "(`idle`, `in-progress`, `needs-recover` — run `sigforge update recover` on the box — or `unknown`, with "
        "`problem`) and the update history, newest first. Updates are applied on the box with "
        "`sigforge update apply BUNDLE`, not over HTTP.",
    )
    def get_updates(
        self,
        request: Request[Any, Any, Any],
        limit: Annotated[int, Parameter(ge=1, le=1000, description="history records to return")] = 50,
    ) -> UpdatesOut:
        return _updates(context_of(request).settings, api_actor(request), limit)
