"""The update journal: what an update (or a rollback) has begun and finished, so that a crash at any instant can be
undone. One small JSON file (``<data_dir>/updates/journal.json``) written atomically with fsync before and after
every step; it exists exactly while an operation is unfinished.

The steps of ``update apply``, in order (``STEPS``)::

    verified -> staged -> workers-stopped -> db-backed-up -> migrated -> switched -> started -> healthy -> committed

Before a step's work begins, ``doing`` names it (fsync'd); when the work is done, ``step`` names it and ``doing`` is
cleared. So after a crash, ``doing or step`` is the furthest step that may have had an effect, and
``recovery_plan`` derives the undo actions from it. Every undo action is idempotent, so a crash during a rollback is
recovered by running the same plan again. ``committed`` is the commit point: once it is journaled, recovery only
finishes the bookkeeping (history, audit) and never goes back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import msgspec

from sigforge.fsutil import atomic_write, durable_unlink


class Step(StrEnum):
    VERIFIED = "verified"  # the local copy passed every bundle check (signature, expiry, anti-rollback, ...)
    STAGED = "staged"  # the release tree is unpacked at releases/<new>
    WORKERS_STOPPED = "workers-stopped"  # web and workers stopped gracefully (running jobs finish or are requeued)
    DB_BACKED_UP = "db-backed-up"  # a complete backup of the database exists
    MIGRATED = "migrated"  # the NEW release's `db upgrade` succeeded
    SWITCHED = "switched"  # current -> releases/<new>
    STARTED = "started"  # the new release's services were started
    HEALTHY = "healthy"  # /readyz answered 200 from the new version
    COMMITTED = "committed"  # the anti-rollback floor moved; the update is final


STEPS: tuple[Step, ...] = tuple(Step)


def step_index(step: Step) -> int:
    return STEPS.index(step)


class Undo(StrEnum):
    """Recovery actions, always run in this order (each is idempotent)."""

    STOP_SERVICES = "stop-services"  # whatever runs (possibly the new release) is stopped
    SWITCH_BACK = "switch-back"  # current -> releases/<previous>
    RESTORE_DATABASE = "restore-database"  # the database backup taken before the migration is put back
    REMOVE_RELEASE = "remove-release"  # the staged tree of the new release (and unpack leftovers) is removed
    START_PREVIOUS = "start-previous"  # the previous release is started and health-checked


class Event(msgspec.Struct, frozen=True, kw_only=True):
    """One audit event, kept in the journal until it can be written into the database that survives."""

    action: str
    at: datetime
    detail: dict[str, Any] = {}


class Journal(msgspec.Struct, frozen=True, kw_only=True):
    schema: Literal[1] = 1
    id: str
    operation: Literal["apply", "rollback"]
    previous: str  # the release to return to on failure (for a manual rollback: the one being rolled back to)
    target: str  # the release being installed (for a manual rollback: the one being left)
    started: datetime
    actor: str
    step: Step | None = None  # the last step finished
    doing: Step | None = None  # the step begun and not (yet) finished
    phase: Literal["forward", "rolling-back"] = "forward"
    error: str | None = None
    release_created: bool = False  # releases/<target> was unpacked by this update (so a rollback may remove it)
    backup_dir: str | None = None
    services: str = ""  # the service manager in use ("pidfile" or "systemd"), so `recover` uses the same
    events: tuple[Event, ...] = ()

    @property
    def reached(self) -> Step | None:
        """The furthest step that may have had an effect."""
        return self.doing or self.step


def recovery_plan(journal: Journal) -> tuple[Undo, ...]:
    """What to undo after ``journal``'s operation stopped (crashed, failed or was interrupted) unfinished.

    ======================== ==================================================================================
    furthest step begun      undo
    ======================== ==================================================================================
    (none), verified, staged remove the staged release; the services were never touched
    workers-stopped          stop (whatever was half-stopped), remove the release, start the previous one
    db-backed-up             the same (the migration had not begun: the database is untouched)
    migrated .. healthy      stop, switch current back, restore the database, remove the release, start previous
    committed                nothing: the update is final (only the bookkeeping is finished)
    ======================== ==================================================================================

    A manual rollback (operation ``rollback``) always runs stop, switch, restore, start.
    """
    if journal.operation == "rollback":
        return (Undo.STOP_SERVICES, Undo.SWITCH_BACK, Undo.RESTORE_DATABASE, Undo.START_PREVIOUS)
    if journal.step is Step.COMMITTED:
        return ()
    reached = journal.reached
    if reached is None or step_index(reached) <= step_index(Step.STAGED):
        return (Undo.REMOVE_RELEASE,)
    plan = [Undo.STOP_SERVICES, Undo.SWITCH_BACK]
    if step_index(reached) >= step_index(Step.MIGRATED):
        plan.append(Undo.RESTORE_DATABASE)
    plan += [Undo.REMOVE_RELEASE, Undo.START_PREVIOUS]
    return tuple(plan)


def load_journal(path: Path) -> Journal | None:
    """The journal, or None when no operation is unfinished.

    Raises:
        ValueError: the file exists but is damaged (never guessed around: an operator must look).
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        return msgspec.json.decode(data, type=Journal, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"the update journal {path} is damaged: {exc}") from exc


def save_journal(path: Path, journal: Journal) -> None:
    atomic_write(path, msgspec.json.encode(journal))


def clear_journal(path: Path) -> None:
    durable_unlink(path)
