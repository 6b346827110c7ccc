"""Signed updates of the box: apply, recover, rollback, status, history (see docs/updates.md).

Invariants:
    * Only a local copy of a release bundle is verified and used (signature by the release role, expiry against the
      time floor, anti-rollback floor, product/architecture, ``min_installed_version`` = required upgrade stops);
      a rejection changes nothing but the history and the audit log.
    * Every step is journaled (``updates.journal``) before and after its work, with fsync; after a crash at any
      instant ``recover`` derives the undo actions from the journal (``recovery_plan``) and runs them; every action
      is idempotent. ``committed`` is the commit point.
    * The database is backed up after the services are stopped and before the NEW release's code migrates it
      (SQLite: the online backup API, both ways; PostgreSQL: the portable dump, restored by the previous release's
      own code). Old code refuses a newer schema, so a failed update always restores the database.
    * Processes are started, stopped and probed only through the ``UpdateHost`` port (the CLI implements it:
      systemd units or a pidfile-managed ``sigforge up``): services never spawn processes or speak HTTP.
    * Every step is an audit event. Events are kept in the journal until the operation ends, then written into the
      database that survives (the migrated one after a commit, the restored one after a rollback), once.
    * A request (``request``, from the console) only verifies, exactly as ``apply`` does, and stores the verified copy
      under ``updates/requests``; ``run_request`` (the privileged runner, outside the web service) applies it with
      ``apply``'s own procedure under the same lock and deletes it whatever the outcome.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import sqlite3
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import msgspec
from sqlalchemy import text
from sqlalchemy.engine import make_url

import sigforge
from sigforge.bundles import (
    PRODUCT,
    STATE_FILE,
    Manifest,
    Reason,
    VerifiedBundle,
    Version,
    extract_verified,
    load_trust,
    local_copy,
    record_accepted,
    verify_bundle,
)
from sigforge.bundles.reasons import reject
from sigforge.db import dump, migrate
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.errors import BundleRejected, Conflict, DomainError, IntegrityError, NotFound
from sigforge.fsutil import atomic_write, fsync_dir
from sigforge.logging import get_logger
from sigforge.services.context import Actor
from sigforge.settings import Settings
from sigforge.updates import (
    Event,
    HistoryRecord,
    Journal,
    Layout,
    Owner,
    Step,
    Undo,
    UpdateRequest,
    clear_journal,
    fault_point,
    hand_over,
    load_history,
    load_journal,
    load_request,
    record_history,
    recovery_plan,
    remove_request,
    request_files,
    save_journal,
    save_request,
)
from sigforge.updates.history import Result

log = get_logger(__name__)

UPDATES_DIR = "updates"  # <data_dir>/updates: journal.json, history.json, backups/, incoming/, requests/, .lock
REQUEST_LOCK_WAIT_S = 60.0  # how long `run-requests` waits for the lock (the request being stored, another updater)
BACKUP_COMPLETE = "COMPLETE"  # written last into a database backup directory: what it holds
SQLITE_BACKUP = "database.sqlite3"
SPACE_MARGIN = 64 * 1024**2


class UpdateHost(Protocol):
    """What the update needs from the machine: the services, the releases' own commands, and a health probe."""

    name: str  # "systemd" or "pidfile": recorded in the journal so that `recover` uses the same

    def stop_services(self) -> None:
        """Stop the web service and the workers gracefully (running jobs finish or are requeued); wait for it."""

    def start_services(self) -> None:
        """Start the services of the release ``current`` points at (without waiting for readiness)."""

    def services_running(self) -> bool: ...

    def run_release(self, release: Path, args: Sequence[str], timeout_s: float) -> tuple[int, str]:
        """Run ``<release>/bin/sigforge ARGS`` with this box's settings; return the exit status and output tail."""

    def wait_healthy(self, version: str, timeout_s: float) -> tuple[bool, str]:
        """Poll readiness until it answers 200 from ``version`` (True) or the time is up / the services died."""


class UpdateFailed(DomainError):
    """The update failed and was rolled back automatically (the box runs the previous release)."""

    code = "update-failed"


@dataclass(frozen=True, slots=True)
class UpdateStatus:
    current: str | None
    installed: list[str]
    running: bool
    journal: Journal | None
    last: HistoryRecord | None
    request: UpdateRequest | None = None  # a verified bundle waiting for `sigforge update run-requests`


def _now() -> datetime:
    return datetime.now(UTC)


class UpdateService:
    """Apply, recover and roll back updates of the box under ``layout`` whose data ``settings`` describes."""

    def __init__(
        self,
        settings: Settings,
        layout: Layout,
        host: UpdateHost,
        actor: Actor,
        *,
        health_timeout_s: float = 90.0,
        migrate_timeout_s: float = 1800.0,
        clock: Callable[[], datetime] = _now,
        owner: Owner | None = None,
    ) -> None:
        #: the data directory's owner when a root updater works on the service user's data (``updates.ownership``):
        #: what this process writes there is handed to it before the services start and when the operation ends
        self.owner = owner
        self.settings = settings
        self.layout = layout
        self.host = host
        self.actor = actor
        self.health_timeout_s = health_timeout_s
        self.migrate_timeout_s = migrate_timeout_s
        self.clock = clock
        self.dir = settings.data_path / UPDATES_DIR
        self.journal_path = self.dir / "journal.json"
        self.history_path = self.dir / "history.json"
        self.backups = self.dir / "backups"
        self.incoming = self.dir / "incoming"
        self.requests = self.dir / "requests"  # verified bundles waiting for `run-requests` (watched by a path unit)
        self.requesting = self.dir / "requesting"  # uploads and copies being verified for a request

    # ---- queries -------------------------------------------------------------------------------------------------

    def status(self) -> UpdateStatus:
        history = load_history(self.history_path)
        return UpdateStatus(
            current=self.layout.current_version(),
            installed=self.layout.installed(),
            running=self.host.services_running(),
            journal=load_journal(self.journal_path),
            last=history[-1] if history else None,
            request=self.pending_request(),
        )

    def history(self) -> list[HistoryRecord]:
        return load_history(self.history_path)

    def pending_request(self) -> UpdateRequest | None:
        """The request waiting for ``sigforge update run-requests``, if any (ValueError: its record is damaged)."""
        return load_request(self.requests)

    # ---- requests (from the console): verified here, applied by the privileged runner -------------------------

    def upload_dir(self) -> Path:
        """Where an upload is written before ``request`` takes it (private, beside the requests)."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.requesting.mkdir(exist_ok=True, mode=0o700)
        return self.requesting

    def request(self, bundle: Path) -> UpdateRequest:
        """Verify ``bundle`` exactly as ``apply`` does and store the verified copy as the pending request.

        Nothing is staged, stopped or migrated: ``sigforge update run-requests`` (a root unit triggered by the
        request directory, or ``sigforge up`` in pidfile mode) applies it with ``apply``.

        Raises:
            Conflict: an updater runs, an interrupted update awaits ``recover``, a request is pending already, or
                there is no current release.
            BundleRejected: the bundle failed verification (recorded in the history and audit log; nothing stored).
        """
        with self._lock(wait=False) as held:
            if not held:
                raise Conflict("an update, recovery or rollback is running")
            if load_journal(self.journal_path) is not None:
                raise Conflict("an interrupted update must be recovered first: run `sigforge update recover`")
            pending = self.pending_request()
            if pending is not None:
                raise Conflict(f"an update to {pending.version} requested by {pending.requested_by} is pending")
            previous = self.layout.current_version()
            if previous is None:
                raise Conflict(f"no current release at {self.layout.current}: install sigforge first")
            started = self.clock()
            self.upload_dir()
            with local_copy(bundle, self.settings.bundles, workdir=self.requesting) as copy:
                verified = self._verify(copy, bundle, previous, started)
                request = UpdateRequest(
                    id=str(uuid.uuid4()), version=verified.manifest.version, requested_by=self.actor.name,
                    requested_at=started,
                )  # fmt: skip
                self.requests.mkdir(exist_ok=True, mode=0o700)
                stored, _ = request_files(self.requests, request.id)
                copy.rename(stored)  # the verified bytes themselves (same file system), then the record
                fsync_dir(self.requests)
                save_request(self.requests, request)
            event = self._event("requested", request_id=request.id, version=request.version, bundle=str(bundle),
                                signed_by=sorted(verified.signed_by), installed=previous)  # fmt: skip
            self._write_audit(request.id, (event,))
            log.info("update.requested", version=request.version, requested_by=request.requested_by)
            return request

    def run_request(self, *, lock_wait_s: float = REQUEST_LOCK_WAIT_S) -> tuple[UpdateRequest, HistoryRecord] | None:
        """Apply the pending request, if any, as ``apply`` would, in the name of ``web:<the admin>``; its files are
        deleted whatever the outcome (the history has it). None: no request.

        Raises:
            Conflict: the lock stayed busy for ``lock_wait_s`` (the request stays), or an interrupted update awaits
                ``recover`` (the request is dropped). Otherwise what ``apply`` raises.
        """
        with self._lock(wait=True, timeout_s=lock_wait_s) as held:
            if not held:
                raise Conflict("another update, recovery or rollback is running")
            request = self.pending_request()
            if request is None:
                return None
            bundle, _ = request_files(self.requests, request.id)
            try:
                requester = self._audited_requester(request.id)
                if requester is None:
                    raise IntegrityError(f"the update request {request.id} has no audit record of who made it: "
                                         "it was not applied (request the update again)")  # fmt: skip
                if requester != request.requested_by:
                    log.warning("update.request.requester-mismatch", file=request.requested_by, audited=requester)
                actor, self.actor = self.actor, Actor(f"web:{requester}")
                try:
                    return request, self._apply_held(bundle)
                finally:
                    self.actor = actor
            finally:
                remove_request(self.requests, request.id)

    def _audited_requester(self, request_id: str) -> str | None:
        """Who requested ``request_id``: the actor of its ``update.requested`` audit event, which the web service
        wrote as the signed-in admin. The request file is the service user's to write, so it is not trusted for that
        (the bundle itself is verified again by ``apply``)."""
        db = self._database()
        try:
            with db.scope(write=False) as session:
                events = AuditRepository(session).for_subject("update", request_id)
                return next((e.actor for e in events if e.action == "update.requested"), None)
        finally:
            db.dispose()

    # ---- apply ---------------------------------------------------------------------------------------------------

    def apply(self, bundle: Path) -> HistoryRecord:
        """Install the release bundle at ``bundle`` (e.g. on removable media); see the module invariants.

        Raises:
            BundleRejected: the bundle failed verification; nothing changed.
            Conflict: another update runs, an interrupted one awaits ``recover``, or there is no current release.
            UpdateFailed: a step failed; the previous release runs again on the restored database.
        """
        with self._lock(wait=False) as held:
            if not held:
                raise Conflict("another update, recovery or rollback is running")
            return self._apply_held(bundle)

    def _apply_held(self, bundle: Path) -> HistoryRecord:
        if load_journal(self.journal_path) is not None:
            raise Conflict("an interrupted update must be recovered first: run `sigforge update recover`")
        previous = self.layout.current_version()
        if previous is None:
            raise Conflict(f"no current release at {self.layout.current}: install sigforge first")
        self._clear_dir(self.incoming)
        return self._apply(bundle, previous)

    def _apply(self, bundle: Path, previous: str) -> HistoryRecord:
        started = self.clock()
        journal: Journal | None = None
        try:
            with local_copy(bundle, self.settings.bundles, workdir=self.incoming) as copy:
                verified = self._verify(copy, bundle, previous, started)
                manifest = verified.manifest
                journal = Journal(
                    id=str(uuid.uuid4()), operation="apply", previous=previous, target=manifest.version,
                    started=started, actor=self.actor.name, step=Step.VERIFIED, services=self.host.name,
                    events=(self._event(Step.VERIFIED, bundle=str(bundle), signed_by=sorted(verified.signed_by),
                                        expires=manifest.expires.isoformat()),),
                )  # fmt: skip
                save_journal(self.journal_path, journal)
                log.info("update.verified", previous=previous, target=manifest.version)
                fault_point(Step.VERIFIED)
                journal = self._do(journal, Step.STAGED, lambda: self._stage(verified), release_created=True)
            journal = self._do(journal, Step.WORKERS_STOPPED, self._stop)
            backup = self.backups / journal.id
            journal = self._do(journal, Step.DB_BACKED_UP, lambda: self._backup(backup), backup_dir=str(backup))
            journal = self._do(journal, Step.MIGRATED, lambda: self._migrate(manifest.version))
            journal = self._do(journal, Step.SWITCHED, lambda: self._switch(manifest.version))
            journal = self._do(journal, Step.STARTED, self._start)
            journal = self._do(journal, Step.HEALTHY, lambda: self._healthy(manifest.version))
            return self._commit(journal, manifest)
        except BaseException as exc:
            if journal is None:  # nothing was changed (verification failed or the copy could not be made)
                raise
            journal = load_journal(self.journal_path) or journal  # the file knows the step begun (`doing`)
            failed_at = journal.reached
            log.error("update.failed", step=str(failed_at), error=str(exc))
            journal = msgspec.structs.replace(
                journal, error=f"{type(exc).__name__}: {exc}",
                events=(*journal.events, self._event("failed", step=str(failed_at), error=str(exc)[:2000])),
            )  # fmt: skip
            save_journal(self.journal_path, journal)
            record = self._roll_back(journal)
            if not isinstance(exc, Exception):
                raise
            raise UpdateFailed(
                f"the update to {journal.target} failed at step {failed_at}: {exc}; rolled back to {previous}"
                + ("" if record.result == "rolled-back" else " (but the previous release is not healthy either)"),
                detail={"step": str(failed_at), "result": record.result, "update_id": journal.id},
            ) from exc

    def _verify(self, copy: Path, source: Path, previous: str, started: datetime) -> VerifiedBundle:
        try:
            root, state = load_trust(self.settings.trust_path)
            verified = verify_bundle(
                copy, trust_root=root, state=state, now=self.clock(), expected_product=PRODUCT,
                host_arch=platform.machine(), installed_version=Version.parse(previous), limits=self.settings.bundles,
                expected_kind="release",
            )  # fmt: skip
            manifest = verified.manifest
            if manifest.name != PRODUCT:
                reject(Reason.WRONG_PRODUCT, f"a release bundle of {manifest.name!r}, not of {PRODUCT!r}")
            launcher = next((f for f in manifest.files if f.path == "bin/sigforge"), None)
            if launcher is None or not launcher.mode & 0o100:
                reject(Reason.MANIFEST_INVALID, "not a release tree: no executable bin/sigforge")
        except BundleRejected as exc:
            record = HistoryRecord(
                id=str(uuid.uuid4()), operation="apply", previous=previous, target=None, started=started,
                finished=self.clock(), result="rejected", error=str(exc), steps=("update.rejected",),
                actor=self.actor.name,
            )  # fmt: skip
            record_history(self.history_path, record)
            detail = {"bundle": str(source), "reason": exc.reason, "error": exc.message, "installed": previous}
            event = Event(action="update.rejected", at=self.clock(), detail=detail)
            self._write_audit(record.id, (event,))
            log.warning("update.rejected", reason=exc.reason, error=exc.message)
            raise
        return verified

    def _do(self, journal: Journal, step: Step, work: Callable[[], dict[str, Any]], **fields: Any) -> Journal:
        """Run one step: journal that it begins, do it, journal that it is done (with its audit event)."""
        journal = msgspec.structs.replace(journal, doing=step, **fields)
        save_journal(self.journal_path, journal)
        detail = work()
        journal = msgspec.structs.replace(
            journal, step=step, doing=None, events=(*journal.events, self._event(step, **detail))
        )
        save_journal(self.journal_path, journal)
        log.info(f"update.{step}", target=journal.target, **detail)
        fault_point(step)
        return journal

    def _event(self, what: str, **detail: Any) -> Event:
        return Event(action=f"update.{what}", at=self.clock(), detail=detail)

    # ---- the steps -----------------------------------------------------------------------------------------------

    def _stage(self, verified: VerifiedBundle) -> dict[str, Any]:
        version = verified.manifest.version
        dest = self.layout.release(version)
        if self.layout.current_version() == version:
            raise Conflict(f"{version} is the current release already")
        self.layout.releases.mkdir(parents=True, exist_ok=True)
        self._remove_release(version)  # leftovers of an earlier attempt that failed
        staging = dest.with_name(f"{version}.staging")
        extract_verified(verified, staging, self.settings.bundles)
        staging.rename(dest)
        fsync_dir(self.layout.releases)
        return {"path": str(dest), "files": len(verified.manifest.files)}

    def _stop(self) -> dict[str, Any]:
        self.host.stop_services()
        return {"services": self.host.name}

    def _start(self) -> dict[str, Any]:
        self.host.start_services()
        return {"services": self.host.name}

    def _migrate(self, version: str) -> dict[str, Any]:
        code, output = self.host.run_release(self.layout.release(version), ["db", "upgrade"], self.migrate_timeout_s)
        if code != 0:
            raise IntegrityError(f"the migration of release {version} failed (exit {code}): {output[-1500:]}")
        return {"release": version, "output": output[-500:]}

    def _switch(self, version: str) -> dict[str, Any]:
        self.layout.switch(version)
        return {"current": version}

    def _healthy(self, version: str) -> dict[str, Any]:
        ok, detail = self.host.wait_healthy(version, self.health_timeout_s)
        if not ok:
            raise IntegrityError(f"release {version} did not become ready within {self.health_timeout_s:g} s: {detail}")
        return {"version": version}

    def _commit(self, journal: Journal, manifest: Manifest) -> HistoryRecord:
        journal = msgspec.structs.replace(journal, doing=Step.COMMITTED)
        save_journal(self.journal_path, journal)
        record_accepted(self.settings.trust_path / STATE_FILE, manifest)  # the anti-rollback floor moves forward
        journal = msgspec.structs.replace(
            journal, step=Step.COMMITTED, doing=None,
            events=(*journal.events, self._event(Step.COMMITTED, previous=journal.previous, version=manifest.version)),
        )  # fmt: skip
        save_journal(self.journal_path, journal)
        fault_point(Step.COMMITTED)
        return self._finish(journal, "committed")

    # ---- the database backup -------------------------------------------------------------------------------------

    def _sqlite_file(self) -> Path | None:
        url = make_url(self.settings.database_url)
        return Path(url.database or "") if url.get_backend_name() == "sqlite" else None

    def _backup(self, dest: Path) -> dict[str, Any]:
        self._clear_dir(dest)
        sqlite_file = self._sqlite_file()
        if sqlite_file is not None:
            size = sum(p.stat().st_size for p in (sqlite_file, sqlite_file.with_name(sqlite_file.name + "-wal"))
                       if p.exists())  # fmt: skip
            free = shutil.disk_usage(dest).free
            if free < size + SPACE_MARGIN:
                raise Conflict(f"not enough free space in {dest} for the database backup: {size} bytes needed "
                               f"(plus {SPACE_MARGIN}), {free} free")  # fmt: skip
            partial = dest / f"{SQLITE_BACKUP}.partial"
            with closing(sqlite3.connect(sqlite_file, timeout=30)) as src, closing(sqlite3.connect(partial)) as dst:
                src.backup(dst)
                dst.execute("PRAGMA journal_mode=DELETE")
                revision = _sqlite_revision(dst)
            with partial.open("rb") as fh:
                os.fsync(fh.fileno())
            partial.rename(dest / SQLITE_BACKUP)
            meta: dict[str, Any] = {"kind": "sqlite", "bytes": (dest / SQLITE_BACKUP).stat().st_size,
                                    "revision": revision}  # fmt: skip
        else:
            db = self._database()
            try:
                revision = migrate.ensure_at_head(db).current  # this code's models must be the database's
                present = dump.table_names(db)  # the restore drops what appears later (the new release's tables)
                tables = dump.dump(db, dest / "dump")
            finally:
                db.dispose()
            meta = {"kind": "dump", "revision": revision, "present": present,
                    "tables": [[t.name, t.file, [list(c) for c in t.columns], t.rows] for t in tables]}  # fmt: skip
        atomic_write(dest / BACKUP_COMPLETE, json.dumps(meta).encode())
        return {k: v for k, v in meta.items() if k != "tables"} | {"path": str(dest)}

    def _restore(self, journal: Journal) -> dict[str, Any]:
        if journal.backup_dir is None:
            raise IntegrityError("the journal names no database backup to restore")
        backup = Path(journal.backup_dir)
        try:
            meta = json.loads((backup / BACKUP_COMPLETE).read_text())
        except (OSError, ValueError) as exc:
            raise IntegrityError(f"the database backup {backup} is incomplete or unreadable: {exc}") from exc
        if meta["kind"] == "sqlite":
            live = self._sqlite_file()
            assert live is not None, "a SQLite backup is restored into the SQLite database it was taken from"
            live.parent.mkdir(parents=True, exist_ok=True)
            # The backup API writes the pages inside one transaction of the live database: a crash here leaves
            # either the migrated or the restored database, and doing it again is harmless.
            with (
                closing(sqlite3.connect(backup / SQLITE_BACKUP)) as src,
                closing(sqlite3.connect(live, timeout=30)) as dst,
            ):
                src.backup(dst)
                dst.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                revision = _sqlite_revision(dst)
            if revision != meta["revision"]:
                raise IntegrityError(f"the restored database is at {revision}, the backup at {meta['revision']}")
            self._hand_over()  # before the previous release starts on it
            return {"kind": "sqlite", "revision": revision}
        # PostgreSQL: the previous release's own code loads the dump into its own schema.
        release = self.layout.release(journal.previous)
        code, output = self.host.run_release(release, ["update", "restore-db", str(backup)], self.migrate_timeout_s)
        if code != 0:
            raise IntegrityError(f"restoring the database with release {journal.previous} failed: {output[-1500:]}")
        return {"kind": "dump", "revision": meta["revision"]}

    def _database(self) -> Database:
        s = self.settings
        return Database.from_url(s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)

    # ---- rollback and recovery -----------------------------------------------------------------------------------

    def _roll_back(self, journal: Journal, *, start: bool = True) -> HistoryRecord:
        """Run the journal's recovery plan; finish with a history record and the audit events."""
        if journal.phase != "rolling-back":
            journal = msgspec.structs.replace(journal, phase="rolling-back")
            save_journal(self.journal_path, journal)
        plan = recovery_plan(journal)
        for action in plan:
            if not start and action in (Undo.STOP_SERVICES, Undo.START_PREVIOUS):
                continue
            detail = self._undo(journal, action)
            journal = msgspec.structs.replace(
                journal, events=(*journal.events, self._event(f"rollback.{action}", **detail))
            )
            save_journal(self.journal_path, journal)
            log.info(f"update.rollback.{action}", **detail)
        result: Result = "rolled-back"
        if start and Undo.START_PREVIOUS in plan:
            ok, detail_text = self.host.wait_healthy(journal.previous, self.health_timeout_s)
            result = "rolled-back" if ok else "rollback-unhealthy"
            journal = msgspec.structs.replace(
                journal, events=(*journal.events, self._event("rollback.healthy" if ok else "rollback.unhealthy",
                                                              version=journal.previous, detail=detail_text[-500:])),
            )  # fmt: skip
            save_journal(self.journal_path, journal)
        return self._finish(journal, result)

    def _undo(self, journal: Journal, action: Undo) -> dict[str, Any]:
        if action is Undo.STOP_SERVICES:
            self.host.stop_services()
            return {}
        if action is Undo.SWITCH_BACK:
            self.layout.switch(journal.previous)
            return {"current": journal.previous}
        if action is Undo.RESTORE_DATABASE:
            return self._restore(journal)
        if action is Undo.REMOVE_RELEASE:
            return {"removed": self._remove_release(journal.target)}
        self.host.start_services()
        return {"version": journal.previous}

    def _remove_release(self, version: str) -> list[str]:
        """Remove ``releases/<version>`` and unpack leftovers, unless it is current or this process runs from it."""
        dest = self.layout.release(version)
        running_from = Path(sigforge.__file__).resolve()
        removed = []
        candidates = [dest, dest.with_name(f"{version}.staging"), *self.layout.releases.glob(f".{version}.*partial-*")]
        for path in candidates:
            if not (path.exists() or path.is_symlink()):
                continue
            if self.layout.current_version() == version and path == dest:
                continue
            if running_from.is_relative_to(path.resolve()):
                continue  # a recovery run by the new release's binary: its next apply replaces the tree
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(str(path))
        if removed and self.layout.releases.is_dir():
            fsync_dir(self.layout.releases)
        return removed

    def recover(self, *, start: bool = True) -> HistoryRecord | None:
        """Finish or undo an interrupted operation from the journal; None when there is nothing to do.

        ``start=False`` (the units' ``ExecStartPre=`` hook) repairs files and the database only and neither stops
        nor starts services. While another updater holds the lock, it returns None: that one recovers itself.
        """
        with self._lock(wait=False) as held:
            if not held:
                log.info("update.recover.skipped", reason="an updater is running")
                return None
            journal = load_journal(self.journal_path)
            if journal is None:
                self._clear_dir(self.incoming)
                return None
            if journal.step is Step.COMMITTED:
                return self._finish(journal, "committed")
            if journal.phase == "forward":
                journal = msgspec.structs.replace(
                    journal, error=journal.error or "interrupted: the updater stopped before finishing",
                    events=(*journal.events, self._event("interrupted", step=str(journal.reached))),
                )  # fmt: skip
            return self._roll_back(journal, start=start)

    def rollback(self) -> HistoryRecord:
        """Go back to the release before the last committed update, restoring the database backup taken then.

        Everything written to the database since that update is lost (the backup is from before it).

        Raises:
            Conflict: an operation is unfinished, or the last operation was not a committed update of the current
                release. NotFound: its backup or the previous release tree is gone.
        """
        with self._lock(wait=False) as held:
            if not held:
                raise Conflict("another update, recovery or rollback is running")
            if load_journal(self.journal_path) is not None:
                raise Conflict("an interrupted update must be recovered first: run `sigforge update recover`")
            # Rejected bundles changed nothing: the last operation that did is the one to roll back.
            history = [r for r in load_history(self.history_path) if r.result != "rejected"]
            last = history[-1] if history else None
            current = self.layout.current_version()
            if (
                last is None
                or last.operation != "apply"
                or last.result != "committed"
                or current is None
                or last.target != current
            ):
                raise Conflict("nothing to roll back: the last operation was not a committed update of the current "
                               f"release ({current})")  # fmt: skip
            assert last.previous is not None
            if last.backup_dir is None or not (Path(last.backup_dir) / BACKUP_COMPLETE).is_file():
                raise NotFound(f"the database backup of the update to {current} is gone")
            if not self.layout.binary(self.layout.release(last.previous)).is_file():
                raise NotFound(f"the previous release {last.previous} is no longer installed")
            journal = Journal(
                id=str(uuid.uuid4()), operation="rollback", previous=last.previous, target=current,
                started=self.clock(), actor=self.actor.name, phase="rolling-back", backup_dir=last.backup_dir,
                services=self.host.name,
                events=(self._event("rollback.requested", update_id=last.id, to=last.previous),),
            )  # fmt: skip
            save_journal(self.journal_path, journal)
            return self._roll_back(journal)

    # ---- bookkeeping ---------------------------------------------------------------------------------------------

    def _finish(self, journal: Journal, result: Result) -> HistoryRecord:
        committed = result == "committed"
        record = HistoryRecord(
            id=journal.id, operation=journal.operation, previous=journal.previous, target=journal.target,
            started=journal.started, finished=self.clock(), result=result,
            reached=str(journal.reached) if journal.reached else None, error=journal.error,
            backup_dir=journal.backup_dir if committed else None, steps=tuple(e.action for e in journal.events),
            actor=journal.actor,
        )  # fmt: skip
        record_history(self.history_path, record)
        self._write_audit(journal.id, journal.events)
        keep = {Path(journal.backup_dir).name} if committed and journal.backup_dir else set()
        if self.backups.is_dir():  # one backup is kept: the one `sigforge update rollback` would restore
            for old in self.backups.iterdir():
                if old.name not in keep:
                    shutil.rmtree(old, ignore_errors=True)
        self._clear_dir(self.incoming)
        clear_journal(self.journal_path)
        log.info("update.finished", operation=journal.operation, result=result, target=journal.target)
        return record

    def _write_audit(self, operation_id: str, events: Sequence[Event]) -> None:
        """Write the events into the database (once: an operation finished twice writes them only the first time).

        Best effort: the operation's outcome is already decided and in the history; a database that cannot take
        the events is logged, not a reason to undo a committed update.
        """
        try:
            db = self._database()
            try:
                with db.scope() as session:
                    repo = AuditRepository(session)
                    if repo.for_subject("update", operation_id):
                        return
                    for event in events:
                        row = repo.record(
                            actor=self.actor.name, action=event.action[:64], subject_type="update",
                            subject_id=operation_id, detail={**event.detail, "at": event.at.isoformat()},
                        )  # fmt: skip
                        row.occurred_at = event.at
            finally:
                db.dispose()
        except Exception as exc:  # the database itself may be what failed
            log.warning("update.audit_failed", error=str(exc), events=[e.action for e in events])

    @contextmanager
    def _lock(self, *, wait: bool, timeout_s: float | None = None) -> Iterator[bool]:
        """One updater at a time (``flock``: released by the kernel when the holder dies, even by SIGKILL).

        Whatever the operation wrote in the data directory is handed to its owner before the lock is released,
        however the operation ended (see ``updates.ownership``).
        """
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.dir / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if not _flock(fd, wait=wait, timeout_s=timeout_s):
                yield False
                return
            try:
                yield True
            finally:
                self._hand_over()
        finally:
            os.close(fd)

    def _hand_over(self) -> None:
        try:
            hand_over([self.settings.data_path], self.owner)
        except OSError as exc:  # never mask the operation's own outcome; `recover` or the next run hands over again
            log.error("update.hand-over-failed", error=str(exc), owner=self.owner)

    @staticmethod
    def _clear_dir(path: Path) -> None:
        if path.exists():
            shutil.rmtree(path)
        path.mkdir(parents=True, mode=0o700)


def _flock(fd: int, *, wait: bool, timeout_s: float | None) -> bool:
    """An exclusive ``flock`` on ``fd``: at once (``wait`` False), or waiting at most ``timeout_s`` (None: forever)."""
    if wait and timeout_s is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return True
    deadline = time.monotonic() + (timeout_s if wait and timeout_s else 0.0)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.2)


def _sqlite_revision(conn: sqlite3.Connection) -> str | None:
    try:
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    except sqlite3.OperationalError:
        return None
    return str(row[0]) if row else None


def restore_database_dump(settings: Settings, backup: Path) -> dict[str, int]:
    """Load a PostgreSQL backup taken by ``_backup`` into the configured database, replacing what is there.

    Runs in the release that took the backup (``sigforge update restore-db DIR``), whose models and migrations
    are the backup's schema.
    """
    meta = json.loads((backup / BACKUP_COMPLETE).read_text())
    if meta["kind"] != "dump":
        raise IntegrityError(f"{backup} is not a dump backup")
    tables = [dump.TableDump(n, f, tuple((c[0], c[1]) for c in cols), rows) for n, f, cols, rows in meta["tables"]]
    db = Database.from_url(settings.database_url, busy_timeout_ms=settings.database.busy_timeout_ms)
    try:
        if "present" in meta:  # backups taken before this key existed: only sigforge's own tables are dropped
            _drop_tables_created_since(db, set(meta["present"]) | {spec.name for spec in tables})
        dump.drop_everything(db)
        state = migrate.upgrade(db)
        if state.current != meta["revision"]:
            raise IntegrityError(f"this release's schema is {state.current}, the backup's {meta['revision']}")
        return dump.load(db, backup / "dump", tables)
    finally:
        db.dispose()


def _drop_tables_created_since(db: Database, present: set[str]) -> None:
    """Drop the tables that were not in the database when the backup was taken.

    The services were stopped before the backup, so they are the newer release's: its migrations created them, and
    this release's models do not know them (``dump.drop_everything`` refuses unknown tables, which protects tables
    that were there before). ``CASCADE`` on PostgreSQL also drops foreign keys from sigforge's tables to them.
    """
    created = [name for name in dump.table_names(db) if name not in present]
    if not created:
        return
    log.warning("update.restore.drop-new-tables", tables=created)
    with db.engine.begin() as conn:
        cascade = " CASCADE" if conn.dialect.name == "postgresql" else ""
        for name in created:
            conn.execute(text(f"DROP TABLE IF EXISTS {conn.dialect.identifier_preparer.quote(name)}{cascade}"))
