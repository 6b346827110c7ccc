"""Backup create/verify/restore: the round trip on SQLite and PostgreSQL, every verification failure, the restore's
refusals, and a backup taken while a writer is busy."""

from __future__ import annotations

import shutil
import threading
import uuid
from collections import namedtuple
from pathlib import Path

import msgspec
import pytest
from backupkit import (
    ACTOR,
    Members,
    artifact_checksums,
    box_settings,
    open_db,
    populate,
    read_members,
    rewrite,
    snapshot,
    write_members,
)
from sqlalchemy import text

import sigforge
from sigforge.backup.format import BackupInfo, canonical_bytes
from sigforge.backup.signing import sign
from sigforge.bundles import ROOT_FILE, STATE_FILE
from sigforge.bundles.keys import SigningKey, load_signing_key
from sigforge.db import dump, migrate
from sigforge.db.models import Base, Translation, TranslationStatus
from sigforge.db.repositories import AuditRepository
from sigforge.errors import BackupRejected, Conflict, ToolchainMissing
from sigforge.services.backup import BackupService
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.settings import Settings
from sigforge.toolchains.runner import ProcessRunner
from toolchainkit import make_bundle, new_keys


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return new_keys()


@pytest.fixture(params=["sqlite", "postgres"])
def box(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """A box whose SQLite database lives in the data dir (the default), or one on a fresh PostgreSQL database."""
    url = "" if request.param == "sqlite" else str(request.getfixturevalue("postgres_url"))
    return box_settings(tmp_path / "data", url)


def _destroy(settings: Settings) -> None:
    shutil.rmtree(settings.data_path)
    if settings.database.url:  # PostgreSQL: the database is lost too
        db = open_db(settings)
        try:
            dump.drop_everything(db)
        finally:
            db.dispose()


def test_round_trip_gives_the_same_translations_artifacts_and_trust(
    box: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    ids = populate(box, keys, tmp_path)
    db = open_db(box)
    before, checksums = snapshot(db), artifact_checksums(db)
    db.dispose()
    root, state = (box.trust_path / ROOT_FILE).read_bytes(), (box.trust_path / STATE_FILE).read_bytes()
    service = BackupService(box, ACTOR)
    created = service.create(tmp_path / "box.backup")
    assert created.key_created and created.rows["translations"] == 3 and created.rows["artifacts"] == 2
    public = tmp_path / "backup.pub"
    shutil.copy(box.data_path / "keys" / "backup.pub", public)

    _destroy(box)
    restored = BackupService(box, ACTOR).restore(created.path, service.trusted_key(public))

    assert restored.rows["translations"] == 3 and restored.quarantined == ["tinycc"]
    db = open_db(box)
    try:
        migrate.ensure_at_head(db)
        after = snapshot(db)
        assert artifact_checksums(db) == checksums and all(k == v for k, v in checksums.items())
        assert after["translations"] == before["translations"] and after["artifacts"] == before["artifacts"]
        assert {t[0] for t in after["translations"]} == set(ids)
        # audit: every event from before the backup, then the restore's own (and its quarantine) written after it
        n = len(before["audit_events"])
        assert after["audit_events"][:n] == before["audit_events"]
        with db.scope(write=False) as session:
            actions = [e.action for e in AuditRepository(session).recent(2)]
        assert actions == ["backup.restored", "toolchain.quarantined"]
        # the toolchain row is back, quarantined with a clear detail because its tree is not in the backup
        (old,), (new,) = before["toolchains"], after["toolchains"]
        columns = list(Base.metadata.tables["toolchains"].c.keys())
        differ = {c for c, a, b in zip(columns, old, new, strict=True) if a != b}
        assert differ == {"state", "state_detail"}
        detail = dict(zip(columns, new, strict=True))["state_detail"]
        assert detail["reason"] == "restored-from-backup" and "sigforge toolchain import" in detail["message"]
    finally:
        db.dispose()
    assert (box.trust_path / ROOT_FILE).read_bytes() == root and (box.trust_path / STATE_FILE).read_bytes() == state
    # nothing unverified is used: the target has no toolchain until its bundle is imported again, which works
    registry = ToolchainRegistry(db := open_db(box), box, ProcessRunner())
    try:
        with pytest.raises(ToolchainMissing, match="quarantined"):
            registry.resolve("host-c", ACTOR)
        registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
        assert registry.resolve("host-c", ACTOR).name == "tinycc"
    finally:
        db.dispose()


def test_postgres_restore_refuses_a_non_empty_database_unless_forced(
    postgres_url: str, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    settings = box_settings(tmp_path / "data", postgres_url)
    populate(settings, keys, tmp_path, toolchain=False)
    service = BackupService(settings, ACTOR)
    archive = service.create(tmp_path / "pg.backup").path
    trusted = service.trusted_key()
    shutil.rmtree(settings.data_path)
    with pytest.raises(Conflict, match="PostgreSQL database is not empty"):
        service.restore(archive, trusted)
    assert not settings.data_path.exists()
    restored = service.restore(archive, trusted, force=True)
    assert restored.rows["translations"] == 3


# ---- verification: each failure named precisely -------------------------------------------------------------------


@pytest.fixture
def made(tmp_path: Path, keys: dict[str, SigningKey]) -> tuple[Settings, Path]:
    settings = box_settings(tmp_path / "data")
    populate(settings, keys, tmp_path)
    return settings, BackupService(settings, ACTOR).create(tmp_path / "box.backup").path


def _verify(settings: Settings, archive: Path) -> None:
    service = BackupService(settings, ACTOR)
    service.verify(archive, service.trusted_key())


def test_a_good_backup_verifies_and_is_audited(made: tuple[Settings, Path]) -> None:
    settings, archive = made
    _verify(settings, archive)
    db = open_db(settings)
    with db.scope(write=False) as session:
        assert [e.action for e in AuditRepository(session).recent(2)] == ["backup.verified", "backup.created"]
    db.dispose()


def _flip_in(name: str) -> object:
    def change(members: Members) -> Members:
        out = []
        for info, data in members:
            if info.name == name:
                data = bytes([data[0] ^ 0x01]) + data[1:]
            out.append((info, data))
        return out

    return change


def test_one_flipped_byte_in_a_file_is_found(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    bad = rewrite(archive, tmp_path / "bad", _flip_in("payload/db/artifacts.jsonl"))  # type: ignore[arg-type]
    with pytest.raises(BackupRejected, match=r"db/artifacts\.jsonl does not match backup\.json") as info:
        _verify(settings, bad)
    assert info.value.reason == "file-changed" and info.value.detail["path"] == "db/artifacts.jsonl"
    db = open_db(settings)
    with db.scope(write=False) as session:
        event = AuditRepository(session).recent(1)[0]
        assert event.action == "backup.rejected" and event.detail["reason"] == "file-changed"
    db.dispose()


def test_one_flipped_byte_in_the_compressed_stream_is_found(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0x40
    bad = tmp_path / "bad"
    bad.write_bytes(bytes(data))
    with pytest.raises(BackupRejected) as info:
        _verify(settings, bad)
    assert info.value.reason in ("format", "file-changed")


def test_a_missing_file_is_found(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    bad = rewrite(archive, tmp_path / "bad", lambda ms: [(i, d) for i, d in ms if i.name != "payload/trust/root.json"])
    with pytest.raises(BackupRejected, match=r"trust/root\.json is listed in backup\.json but not in the archive") as e:
        _verify(settings, bad)
    assert e.value.reason == "file-missing"


def test_an_extra_file_is_found(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made

    def add(members: Members) -> Members:
        import tarfile

        return [*members, (tarfile.TarInfo("payload/db/extra.jsonl"), b"[]\n")]

    bad = rewrite(archive, tmp_path / "bad", add)
    with pytest.raises(BackupRejected, match=r"does not list: payload/db/extra\.jsonl") as e:
        _verify(settings, bad)
    assert e.value.reason == "file-extra"


def _edit_info(settings: Settings, archive: Path, out: Path, *, resign: bool, **changes: object) -> Path:
    members = read_members(archive)
    info = msgspec.json.decode(members[0][1], type=BackupInfo)
    info_bytes = canonical_bytes(msgspec.structs.replace(info, **changes))
    sig = members[1][1]
    if resign:
        sig = sign(info_bytes, load_signing_key(settings.data_path / "keys" / "backup.key"))
    write_members(out, [(members[0][0], info_bytes), (members[1][0], sig), *members[2:]])
    return out


def test_a_bad_signature_is_found(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    bad = _edit_info(settings, archive, tmp_path / "bad", resign=False, node="elsewhere")
    with pytest.raises(BackupRejected, match="does not verify") as e:
        _verify(settings, bad)
    assert e.value.reason == "bad-signature"


def test_a_signature_by_another_key_is_refused(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    other = tmp_path / "other"
    other.mkdir()
    from sigforge.bundles.keys import write_key_pair

    _, pub = write_key_pair(SigningKey.generate(), other, "k")
    service = BackupService(settings, ACTOR)
    with pytest.raises(BackupRejected, match="not by the trusted key") as e:
        service.verify(archive, service.trusted_key(pub))
    assert e.value.reason == "untrusted-key"
    with pytest.raises(BackupRejected, match="no key to check") as e:
        service.verify(archive, None)
    assert e.value.reason == "untrusted-key"


def test_an_unknown_format_version_is_refused(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    members = read_members(archive)
    raw = members[0][1].replace(b'"format":1', b'"format":2')
    write_members(tmp_path / "bad", [(members[0][0], raw), *members[1:]])
    with pytest.raises(BackupRejected, match="backup format version 2 is unknown") as e:
        _verify(settings, tmp_path / "bad")
    assert e.value.reason == "unknown-format"


# ---- restore's refusals -------------------------------------------------------------------------------------------


def _fresh(tmp_path: Path) -> Settings:
    return box_settings(tmp_path / f"target-{uuid.uuid4().hex[:6]}")


def test_restore_refuses_another_sigforge_version(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    other = _edit_info(settings, archive, tmp_path / "old", resign=True, sigforge_version="0.0.9")
    _verify(settings, other)  # integrity is fine: it is only not restorable here
    target = _fresh(tmp_path)
    service = BackupService(target, ACTOR)
    with pytest.raises(BackupRejected, match=f"made by sigforge 0.0.9; this is sigforge {sigforge.__version__}") as e:
        service.restore(other, BackupService(settings, ACTOR).trusted_key())
    assert e.value.reason == "version-mismatch" and not target.data_path.exists()


def test_restore_refuses_another_schema_revision(made: tuple[Settings, Path], tmp_path: Path) -> None:
    settings, archive = made
    other = _edit_info(settings, archive, tmp_path / "old", resign=True, schema_revision="0001")
    with pytest.raises(BackupRejected, match="schema is revision 0001") as e:
        BackupService(_fresh(tmp_path), ACTOR).restore(other, BackupService(settings, ACTOR).trusted_key())
    assert e.value.reason == "schema-mismatch"


def test_restore_checks_free_space_first(
    made: tuple[Settings, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, archive = made
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr("sigforge.services.backup.shutil.disk_usage", lambda _p: usage(10**9, 10**9 - 4096, 4096))
    target = _fresh(tmp_path)
    with pytest.raises(Conflict, match="not enough free space") as e:
        BackupService(target, ACTOR).restore(archive, BackupService(settings, ACTOR).trusted_key())
    assert e.value.detail["free"] == 4096 and e.value.detail["needed"] > 4096
    assert not target.data_path.exists() and not [p for p in target.data_path.parent.iterdir() if "restore" in p.name]


def test_restore_refuses_a_non_empty_target_and_force_moves_it_aside(
    made: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, archive = made
    trusted = BackupService(settings, ACTOR).trusted_key()
    with pytest.raises(Conflict, match="is not empty"):
        BackupService(settings, ACTOR).restore(archive, trusted)
    db = open_db(settings)
    with db.scope() as session:  # a change after the backup, which the restore must undo
        session.add(Translation(id="late", status=TranslationStatus.QUEUED, source="x", source_sha256="0" * 64,
                                entry="f", target="host-c", input_dtype="float32", frame_length=1, options={},
                                attempts=0))  # fmt: skip
    db.dispose()
    restored = BackupService(settings, ACTOR).restore(archive, trusted, force=True)
    (aside,) = restored.moved_aside
    assert aside.parent == settings.data_path.parent and (aside / "sigforge.sqlite3").is_file()
    db = open_db(settings)
    try:
        with db.scope(write=False) as session:
            assert session.get(Translation, "late") is None
        assert (settings.data_path / "keys" / "backup.key").is_file()  # the box keeps its backup key
    finally:
        db.dispose()


# ---- consistency while a writer is busy ---------------------------------------------------------------------------


def test_a_backup_taken_during_writes_is_a_consistent_snapshot(tmp_path: Path) -> None:
    settings = box_settings(tmp_path / "data")
    db = open_db(settings)
    migrate.upgrade(db)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            with db.scope() as session:  # one transaction: a translation and its audit event
                session.add(Translation(id=f"t-{n:06d}", status=TranslationStatus.QUEUED, source="y" * 2000,
                                        source_sha256="0" * 64, entry="f", target="host-c", input_dtype="float32",
                                        frame_length=n, options={}, attempts=0))  # fmt: skip
                session.flush()
                AuditRepository(session).record(actor="w", action="test.write", subject_type="translation",
                                                 subject_id=f"t-{n:06d}")  # fmt: skip
            written.append(n)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        while len(written) < 50:
            stop.wait(0.01)
        service = BackupService(settings, ACTOR)
        start = len(written)
        archive = service.create(tmp_path / "busy.backup").path
        during = len(written)
    finally:
        stop.set()
        thread.join()
        db.dispose()
    target = _fresh(tmp_path)
    BackupService(target, ACTOR).restore(archive, service.trusted_key())
    restored = open_db(target)
    try:
        with restored.engine.connect() as conn:
            assert conn.execute(text("PRAGMA integrity_check")).scalar_one() == "ok"
            ids = [r[0] for r in conn.execute(text("SELECT id FROM translations ORDER BY id"))]
            events = [r[0] for r in conn.execute(text(
                "SELECT subject_id FROM audit_events WHERE action = 'test.write' ORDER BY id"))]  # fmt: skip
        assert start <= len(ids) <= during  # the snapshot was taken inside create's window
        assert ids == [f"t-{n:06d}" for n in range(1, len(ids) + 1)]  # a prefix of what the writer committed
        assert events == ids  # every translation with its audit event, nothing torn
    finally:
        restored.dispose()


def test_restore_places_a_database_and_trust_dir_configured_outside_the_data_dir(
    made: tuple[Settings, Path], tmp_path: Path
) -> None:
    settings, archive = made
    outside = tmp_path / "elsewhere"
    env_db, env_trust = f"sqlite:///{outside / 'db' / 'box.sqlite3'}", str(outside / "trust")
    from sigforge.settings import load_settings

    target = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "t2"), "SIGFORGE_DATABASE_URL": env_db,
                                "SIGFORGE_BUNDLES_TRUST_DIR": env_trust})  # fmt: skip
    trusted = BackupService(settings, ACTOR).trusted_key()
    (outside / "trust").mkdir(parents=True)
    (outside / "trust" / "root.json").write_text("{}")
    with pytest.raises(Conflict, match=r"trust directory .* is not empty"):
        BackupService(target, ACTOR).restore(archive, trusted)
    restored = BackupService(target, ACTOR).restore(archive, trusted, force=True)
    assert [p.name.split(".pre-restore-")[0] for p in restored.moved_aside] == ["trust"]
    assert (outside / "trust" / "root.json").read_bytes() == (settings.trust_path / "root.json").read_bytes()
    db, source = open_db(target), open_db(settings)
    try:
        assert snapshot(db)["translations"] == snapshot(source)["translations"]
    finally:
        db.dispose()
        source.dispose()
    assert (outside / "db" / "box.sqlite3").is_file() and not (target.data_path / "sigforge.sqlite3").exists()
