"""Backup use cases: create, verify and restore one box's state (see docs/backup.md).

Invariants:
    * A backup holds a consistent logical dump of the database (one snapshot, taken while the service may run), the
      trust directory (``root.json``, ``state.json``) and the config file in use; toolchain trees are not in it (the
      rows are, with a note of which bundles to import again).
    * ``backup.json`` is signed with this box's backup key (or a key the operator names); nothing in an archive is
      used before its signature and every file's size and SHA-256 have been checked.
    * Restore refuses another sigforge version or schema revision, checks the free space before writing anything,
      restores only into an empty data directory (``force`` moves the old one aside first) and an empty database
      (``force`` drops it first), builds everything in a staging directory and switches with a rename. Toolchains
      of this node whose trees are not there afterwards are quarantined with a ``restored-from-backup`` detail.
    * Every create, verify and restore is an audit event; a restore's is written into the restored database.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

import sigforge
from sigforge.backup import (
    BackupInfo,
    ColumnRecord,
    FileRecord,
    Reason,
    TableRecord,
    ToolchainNote,
    TrustedKey,
    VerifiedBackup,
    box_public_key,
    canonical_bytes,
    load_or_create_box_key,
    read_archive,
    sha256_file,
    sign,
    write_archive,
)
from sigforge.backup.format import CONFIG_DIR, DB_DIR, TRUST_DIR, reject
from sigforge.bundles import ROOT_FILE, STATE_FILE
from sigforge.bundles.keys import load_public_key, load_signing_key
from sigforge.db import dump, migrate
from sigforge.db.models import ToolchainState
from sigforge.db.repositories import AuditRepository, ToolchainRepository
from sigforge.db.session import Database
from sigforge.errors import BackupRejected, Conflict, InvalidInput
from sigforge.logging import get_logger
from sigforge.services.context import Actor
from sigforge.settings import Settings

log = get_logger(__name__)

KEY_DIR = "keys"  # <data_dir>/keys/backup.key (0600) and backup.pub: this box's backup key
CONFIG_NAME = "sigforge.toml"
RESTORED_CONFIG_DIR = "restored-config"  # where a restore puts the backed-up config file, for the operator to compare
SPACE_MARGIN = 64 * 1024**2
_FINGERPRINT = re.compile(r"^[0-9a-fA-F]{64}$")


@dataclass(frozen=True, slots=True)
class CreatedBackup:
    path: Path
    backup_id: str
    keyid: str
    key_created: bool
    files: int
    unpacked_bytes: int
    rows: dict[str, int]


@dataclass(frozen=True, slots=True)
class RestoredBackup:
    info: BackupInfo
    keyid: str
    rows: dict[str, int]
    quarantined: list[str]
    moved_aside: list[Path] = field(default_factory=list)
    config: str = "none"  # none | same | differs: the backed-up config file against the one in use


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")


def _inside(path: Path, root: Path) -> Path | None:
    """``path`` relative to ``root`` when it lies inside it, else None."""
    try:
        return path.relative_to(root)
    except ValueError:
        return None


def _non_empty(path: Path) -> bool:
    return path.is_file() or (path.is_dir() and any(path.iterdir()))


def _move_aside(path: Path, moved: list[Path]) -> None:
    aside = path.with_name(f"{path.name}.pre-restore-{_stamp()}-{uuid.uuid4().hex[:6]}")
    path.rename(aside)
    moved.append(aside)


class BackupService:
    """Create, verify and restore backups of the box described by ``settings``; each call opens its own database."""

    def __init__(self, settings: Settings, actor: Actor, *, config_file: Path | None = None) -> None:
        self.settings = settings
        self.actor = actor
        self.config_file = config_file
        self.key_dir = settings.data_path / KEY_DIR

    def _database(self, url: str | None = None) -> Database:
        s = self.settings
        return Database.from_url(url or s.database_url, busy_timeout_ms=s.database.busy_timeout_ms)

    # ---- keys ----------------------------------------------------------------------------------------------------

    def trusted_key(self, key_file: Path | None = None, fingerprint: str | None = None) -> TrustedKey | None:
        """What a signature is checked against: the key file, else the fingerprint, else this box's own key."""
        if key_file is not None:
            return TrustedKey.of(load_public_key(key_file), str(key_file))
        if fingerprint is not None:
            if not _FINGERPRINT.match(fingerprint):
                raise InvalidInput("a backup key fingerprint is 64 hex digits (as `backup create` prints it)")
            return TrustedKey(fingerprint.lower(), None, "the fingerprint given")
        own = box_public_key(self.key_dir)
        return TrustedKey.of(own, "this box's backup key") if own is not None else None

    # ---- create --------------------------------------------------------------------------------------------------

    def create(self, out: Path, *, key_file: Path | None = None) -> CreatedBackup:
        """Write a signed backup of this box to ``out`` (which must not exist).

        Raises:
            InvalidInput: ``out`` exists, or the key file is unusable. SchemaMismatch: the database is not at head.
        """
        if out.exists():
            raise InvalidInput(f"{out} already exists; a backup never overwrites a file")
        if key_file is not None:
            key, key_created = load_signing_key(key_file), False
        else:
            key, key_created = load_or_create_box_key(self.key_dir)
        db = self._database()
        try:
            revision = migrate.ensure_at_head(db).head
            out.parent.mkdir(parents=True, exist_ok=True)
            with self._staging(out.parent, ".sigforge-backup-") as staging:
                dumped = dump.dump(db, staging / DB_DIR)
                self._copy_trust(staging / TRUST_DIR)
                if self.config_file is not None and self.config_file.is_file():
                    _copy_private(self.config_file, staging / CONFIG_DIR / CONFIG_NAME)
                files = _records(staging)
                info = BackupInfo(
                    backup_id=str(uuid.uuid4()), sigforge_version=sigforge.__version__, schema_revision=revision,
                    created=datetime.now(UTC), node=self.settings.node_name,
                    source_dialect="postgresql" if db.engine.dialect.name == "postgresql" else "sqlite",
                    tables=tuple(_table_record(d) for d in dumped), files=files,
                    toolchains=_toolchain_notes(staging / DB_DIR, dumped),
                )  # fmt: skip
                info_bytes = canonical_bytes(info)
                write_archive(out, info, info_bytes, sign(info_bytes, key), staging)
            archive_size, archive_sha = sha256_file(out)
            with db.scope() as session:
                self._audit(session, "backup.created", info.backup_id, path=str(out), archive_sha256=archive_sha,
                            archive_bytes=archive_size, keyid=key.keyid, files=len(files),
                            unpacked_bytes=info.unpacked_bytes)  # fmt: skip
        finally:
            db.dispose()
        log.info("backup.created", path=str(out), backup_id=info.backup_id, files=len(files))
        return CreatedBackup(out, info.backup_id, key.keyid, key_created, len(files), info.unpacked_bytes,
                             {d.name: d.rows for d in dumped})  # fmt: skip

    def _copy_trust(self, dest: Path) -> None:
        for name in (ROOT_FILE, STATE_FILE):
            source = self.settings.trust_path / name
            if source.is_file():
                _copy_private(source, dest / name)

    @contextmanager
    def _staging(self, parent: Path, prefix: str) -> Iterator[Path]:
        parent.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(dir=parent, prefix=prefix))
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    # ---- verify --------------------------------------------------------------------------------------------------

    def verify(self, archive: Path, trusted: TrustedKey | None) -> VerifiedBackup:
        """Check the signature and every file of ``archive``; audited when this box's database is usable."""
        try:
            verified = read_archive(archive, trusted)
        except BackupRejected as exc:
            self._audit_if_possible("backup.rejected", None, path=str(archive), reason=exc.reason, error=exc.message)
            raise
        self._audit_if_possible("backup.verified", verified.info.backup_id, path=str(archive), keyid=verified.keyid)
        return verified

    def _audit_if_possible(self, action: str, backup_id: str | None, **detail: Any) -> None:
        """Verify may run on a box whose database is gone (before a restore): then there is nowhere to audit."""
        url = make_url(self.settings.database_url)
        if url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file():
            return  # opening it would create an empty database file (and a non-empty data dir)
        db = self._database()
        try:
            if migrate.schema_state(db).status is not migrate.SchemaStatus.AT_HEAD:
                return
            with db.scope() as session:
                self._audit(session, action, backup_id or "-", **detail)
        finally:
            db.dispose()

    # ---- restore -------------------------------------------------------------------------------------------------

    def restore(self, archive: Path, trusted: TrustedKey | None, *, force: bool = False) -> RestoredBackup:
        """Restore ``archive`` into this box's (empty) data directory and database; see the module invariants.

        Raises:
            BackupRejected: the archive failed verification, or was made by another version or schema revision.
            Conflict: not enough free space, or a non-empty target without ``force``.
        """
        data = self.settings.data_path
        url = make_url(self.settings.database_url)
        sqlite_file = Path(url.database or "") if url.get_backend_name() == "sqlite" else None
        self._preflight(data, sqlite_file, force)
        moved: list[Path] = []
        with self._staging(data.parent, f".{data.name}.restore-") as staging:
            extract, new_data = staging / "extract", staging / "data"
            new_data.mkdir(mode=0o700)
            target_db = self._target_database(staging, new_data, data, sqlite_file)
            try:
                head = migrate.schema_state(target_db).head
                verified = read_archive(archive, trusted, extract, accept=self._acceptor(head, data.parent))
                info = verified.info
                if target_db.engine.dialect.name == "postgresql" and dump.table_names(target_db):
                    if not force:
                        raise Conflict("the target PostgreSQL database is not empty: restore into an empty database, "
                                       "or give --force to drop its tables first")  # fmt: skip
                    dump.drop_everything(target_db)
                migrate.upgrade(target_db)
                rows = dump.load(target_db, extract / DB_DIR, [_table_dump(t) for t in info.tables])
                quarantined = self._quarantine_missing_trees(target_db, info, data)
                with target_db.scope() as session:
                    self._audit(session, "backup.restored", info.backup_id, path=str(archive), keyid=verified.keyid,
                                created=info.created.isoformat(), source_node=info.node, rows=rows,
                                quarantined=quarantined, force=force)  # fmt: skip
                if target_db.is_sqlite:
                    with target_db.engine.connect() as conn:
                        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
            finally:
                target_db.dispose()
            config = self._place_files(extract, new_data, data)
            self._switch(staging, new_data, data, sqlite_file, force=force, moved=moved)
        log.info("backup.restored", backup_id=info.backup_id, rows=rows, quarantined=quarantined)
        return RestoredBackup(info, verified.keyid, rows, quarantined, moved, config)

    def _preflight(self, data: Path, sqlite_file: Path | None, force: bool) -> None:
        if force:
            return
        if _non_empty(data):
            raise Conflict(f"the data directory {data} is not empty: restore into an empty one, or give --force to "
                           "move it aside first")  # fmt: skip
        trust = self.settings.trust_path
        if _inside(trust, data) is None and _non_empty(trust):
            raise Conflict(f"the trust directory {trust} is not empty: give --force to move it aside first")
        if sqlite_file is not None and _inside(sqlite_file, data) is None and sqlite_file.exists():
            raise Conflict(f"the database file {sqlite_file} exists: give --force to move it aside first")

    def _target_database(self, staging: Path, new_data: Path, data: Path, sqlite_file: Path | None) -> Database:
        if sqlite_file is None:
            return self._database()
        rel = _inside(sqlite_file, data)
        built = new_data / rel if rel is not None else staging / "database.sqlite3"
        return self._database(f"sqlite:///{built}")

    def _acceptor(self, head: str, target: Path) -> Callable[[BackupInfo], None]:
        def accept(info: BackupInfo) -> None:
            if info.sigforge_version != sigforge.__version__:
                reject(Reason.VERSION_MISMATCH, f"the backup was made by sigforge {info.sigforge_version}; this is "
                       f"sigforge {sigforge.__version__}: restore it with the release that made it",
                       backup=info.sigforge_version, running=sigforge.__version__)  # fmt: skip
            if info.schema_revision != head:
                reject(Reason.SCHEMA_MISMATCH, f"the backup's database schema is revision {info.schema_revision}; "
                       f"this release's is {head}", backup=info.schema_revision, head=head)  # fmt: skip
            need = 2 * info.unpacked_bytes + SPACE_MARGIN  # the unpacked payload, and the database built from it
            free = shutil.disk_usage(target).free
            if free < need:
                raise Conflict(f"not enough free space in {target}: the restore needs {need} bytes "
                               f"(twice the {info.unpacked_bytes} unpacked bytes plus {SPACE_MARGIN}), {free} are free",
                               detail={"needed": need, "free": free})  # fmt: skip

        return accept

    def _quarantine_missing_trees(self, db: Database, info: BackupInfo, data: Path) -> list[str]:
        """Quarantine this node's toolchains whose trees will not be there after the restore (see the docs)."""
        done: list[str] = []
        with db.scope() as session:
            repo = ToolchainRepository(session)
            for row in repo.all(self.settings.node_name):
                tree = Path(row.install_dir)
                if row.state == ToolchainState.QUARANTINED or (_inside(tree, data) is None and tree.is_dir()):
                    continue
                detail = {
                    "reason": "restored-from-backup",
                    "message": f"the files of {row.name} {row.version} are not part of a backup: import its bundle "
                    "again with `sigforge toolchain import BUNDLE`",
                    "backup_id": info.backup_id,
                    "manifest_sha256": row.manifest_sha256,
                }
                repo.set_state(row.id, ToolchainState.QUARANTINED, detail)
                self._audit(session, "toolchain.quarantined", f"{row.node}/{row.name}", subject_type="toolchain",
                            reason="restored-from-backup", backup_id=info.backup_id)  # fmt: skip
                done.append(row.name)
        return done

    def _place_files(self, extract: Path, new_data: Path, data: Path) -> str:
        """Put the trust files into the new data dir (when the trust dir lives there); return the config verdict."""
        trust_rel = _inside(self.settings.trust_path, data)
        if trust_rel is not None:
            for source in sorted((extract / TRUST_DIR).glob("*")):
                _copy_public(source, new_data / trust_rel / source.name)
        old_keys = data / KEY_DIR
        if old_keys.is_dir():  # --force: the box keeps its backup key (its identity) across the restore
            shutil.copytree(old_keys, new_data / KEY_DIR)
        backed_up = extract / CONFIG_DIR / CONFIG_NAME
        if not backed_up.is_file():
            return "none"
        _copy_private(backed_up, new_data / RESTORED_CONFIG_DIR / CONFIG_NAME)
        in_use = self.config_file
        if in_use is not None and in_use.is_file() and in_use.read_bytes() == backed_up.read_bytes():
            return "same"
        return "differs"

    def _switch(
        self, staging: Path, new_data: Path, data: Path, sqlite_file: Path | None, *, force: bool, moved: list[Path]
    ) -> None:
        """Move what was built into place: the data directory in one rename, then what lives outside it."""
        trust = self.settings.trust_path
        if data.exists():
            if _non_empty(data):
                assert force  # the preflight refused otherwise
                _move_aside(data, moved)
            else:
                data.rmdir()
        new_data.rename(data)
        if _inside(trust, data) is None:
            if _non_empty(trust):
                _move_aside(trust, moved)
            elif trust.exists():
                trust.rmdir()
            trust.mkdir(parents=True, mode=0o755)
            for source in sorted((staging / "extract" / TRUST_DIR).glob("*")):
                _copy_public(source, trust / source.name)
        if sqlite_file is not None and _inside(sqlite_file, data) is None:
            for suffix in ("", "-wal", "-shm"):
                old = sqlite_file.with_name(sqlite_file.name + suffix)
                if old.exists():
                    _move_aside(old, moved)
            sqlite_file.parent.mkdir(parents=True, exist_ok=True)
            (staging / "database.sqlite3").rename(sqlite_file)

    def _audit(
        self, session: Any, action: str, subject_id: str, *, subject_type: str = "backup", **detail: Any
    ) -> None:
        AuditRepository(session).record(
            actor=self.actor.name, action=action, subject_type=subject_type, subject_id=subject_id[:64],
            request_id=self.actor.request_id, job_id=self.actor.job_id, detail=detail,
        )  # fmt: skip


def _copy_private(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copyfile(source, dest)
    dest.chmod(0o600)


def _copy_public(source: Path, dest: Path) -> None:
    dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
    shutil.copyfile(source, dest)
    dest.chmod(0o644)


def _records(staging: Path) -> tuple[FileRecord, ...]:
    out = []
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        size, digest = sha256_file(path)
        out.append(FileRecord(path=path.relative_to(staging).as_posix(), size=size, sha256=digest))
    return tuple(out)


def _table_record(d: dump.TableDump) -> TableRecord:
    columns = tuple(ColumnRecord(name=n, codec=c) for n, c in d.columns)  # type: ignore[arg-type]
    return TableRecord(name=d.name, file=f"{DB_DIR}/{d.file}", columns=columns, rows=d.rows)


def _table_dump(t: TableRecord) -> dump.TableDump:
    return dump.TableDump(
        t.name, t.file.removeprefix(f"{DB_DIR}/"), tuple((c.name, c.codec) for c in t.columns), t.rows
    )


def _toolchain_notes(db_dir: Path, dumped: list[dump.TableDump]) -> tuple[ToolchainNote, ...]:
    spec = next((d for d in dumped if d.name == "toolchains"), None)
    if spec is None:
        return ()
    return tuple(
        ToolchainNote(node=r["node"], name=r["name"], version=r["version"], manifest_sha256=r["manifest_sha256"],
                      targets=tuple(r["targets"]), state=r["state"])
        for r in dump.read_rows(db_dir, spec)
    )  # fmt: skip
