"""Translation jobs: enqueue after commit only, one claim per message, duplicates do nothing, stale jobs re-sent."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from sigforge.db.models import Translation
from sigforge.db.repositories import AuditRepository, TranslationRepository
from sigforge.db.session import Database
from sigforge.db.types import utcnow
from sigforge.services import jobs
from sigforge.services.context import Actor
from sigforge.services.jobs import BuildEnvironment, TranslationJob
from sigforge.services.translations import NewTranslation, TranslationService
from sigforge.settings import LimitSettings, load_settings
from support import FIR_DECIMATE, provision_toolchain

LIMITS = LimitSettings()


def create(db: Database, sent: list[str], source: str = FIR_DECIMATE) -> str:
    with db.scope() as session:
        service = TranslationService(session, limits=LIMITS, actor=Actor("test"), dispatch=sent.append)
        row = service.create(NewTranslation(source=source, frame_length=256))
        assert sent == [] or row.id not in sent, "nothing is sent before the commit"
        return row.id


def test_job_is_sent_only_after_commit(db: Database) -> None:
    sent: list[str] = []
    translation_id = create(db, sent)
    assert sent == [translation_id]


def test_rollback_sends_nothing_and_writes_nothing(db: Database) -> None:
    sent: list[str] = []
    with pytest.raises(RuntimeError), db.scope() as session:
        TranslationService(session, limits=LIMITS, actor=Actor("test"), dispatch=sent.append).create(
            NewTranslation(source=FIR_DECIMATE, frame_length=256)
        )
        raise RuntimeError("the request failed after the insert")
    assert sent == []
    with db.scope(write=False) as session:
        assert TranslationRepository(session).count() == 0


def test_a_failing_send_after_commit_keeps_the_saved_row(db: Database) -> None:
    def broker_down(_: str) -> None:
        raise ConnectionError("broker unreachable")

    with db.scope() as session:
        row = TranslationService(session, limits=LIMITS, actor=Actor("test"), dispatch=broker_down).create(
            NewTranslation(source=FIR_DECIMATE, frame_length=256)
        )
    with db.scope(write=False) as session:
        assert TranslationRepository(session).get(row.id) is not None


def test_claim_admits_the_redelivered_message_but_not_a_duplicate(db: Database) -> None:
    translation_id = create(db, [])
    with db.scope() as session:
        repo = TranslationRepository(session)
        assert repo.claim(translation_id, "msg-A")
        assert not repo.claim(translation_id, "msg-B"), "a second message must not run a claimed translation"
        assert repo.claim(translation_id, "msg-A"), "the same message, redelivered after a crash, takes over"
    with db.scope(write=False) as session:
        row = TranslationRepository(session).get(translation_id)
        assert row is not None and row.attempts == 2 and row.job_id == "msg-A"


def test_stale_queued_translations_are_redispatched(db: Database) -> None:
    sent: list[str] = []
    old, fresh = create(db, sent), create(db, sent)
    with db.engine.begin() as conn:
        conn.execute(
            update(Translation).where(Translation.id == old).values(updated_at=utcnow() - timedelta(minutes=10))
        )
    sent.clear()
    with db.scope() as session:
        service = TranslationService(session, limits=LIMITS, actor=Actor("worker"), dispatch=sent.append)
        assert service.redispatch_stale(older_than_s=60) == [old]
        assert sent == []
    assert sent == [old]
    assert fresh not in sent
    with db.scope(write=False) as session:
        actions = [e.action for e in AuditRepository(session).for_subject("translation", old)]
    assert actions == ["translation.created", "translation.redispatched"]
    sent.clear()
    with db.scope() as session:  # touched: not stale again right away
        TranslationService(session, limits=LIMITS, actor=Actor("worker"), dispatch=sent.append).redispatch_stale(
            older_than_s=60
        )
    assert sent == []


@pytest.mark.slow
def test_duplicate_message_is_a_no_op_and_the_outcome_is_recorded_once(sqlite_db: Database, tmp_path: Path) -> None:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path)})
    provision_toolchain(settings)
    env = BuildEnvironment.from_settings(settings, sqlite_db)
    translation_id = create(sqlite_db, [])
    first = TranslationJob(sqlite_db, env, Actor("worker", job_id="msg-A"))
    duplicate = TranslationJob(sqlite_db, env, Actor("worker", job_id="msg-B"))
    with sqlite_db.scope() as session:
        assert TranslationRepository(session).claim(translation_id, "msg-A")  # msg-A is mid-flight
    assert duplicate.run(translation_id) is None
    assert first.run(translation_id) is not None  # msg-A redelivered after its worker died
    assert first.run(translation_id) is None  # and once more: finished is final
    with sqlite_db.scope(write=False) as session:
        row = TranslationRepository(session).get(translation_id)
        assert row is not None and row.status == "verified"
        actions = [e.action for e in AuditRepository(session).for_subject("translation", translation_id)]
    assert actions.count("translation.verified") == 1


def test_translations_running_past_any_time_limit_are_failed_as_lost(db: Database) -> None:
    lost, fresh = create(db, []), create(db, [])
    with db.scope() as session:
        repo = TranslationRepository(session)
        assert repo.claim(lost, "msg-dead") and repo.claim(fresh, "msg-live")
    with db.engine.begin() as conn:
        conn.execute(update(Translation).where(Translation.id == lost).values(started_at=utcnow() - timedelta(hours=2)))
    with db.scope() as session:
        service = TranslationService(session, limits=LIMITS, actor=Actor("worker"))
        assert service.fail_lost(started_more_than_s=3600) == [lost]
    with db.scope(write=False) as session:
        repo = TranslationRepository(session)
        row, other = repo.get(lost), repo.get(fresh)
        assert row is not None and row.status == "failed" and row.error and row.error["code"] == "job-lost"
        assert other is not None and other.status == "running"
        actions = [e.action for e in AuditRepository(session).for_subject("translation", lost)]
    assert actions[-1] == "translation.lost"
    with db.scope() as session:  # a late redelivery of the dead message finds the row final
        assert not TranslationRepository(session).claim(lost, "msg-dead")


@pytest.mark.slow
def test_a_toolchain_changed_at_rest_fails_the_job_and_builds_nothing(
    sqlite_db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path)})
    provision_toolchain(settings)
    env = BuildEnvironment.from_settings(settings, sqlite_db)
    [view] = env.toolchains.installed()
    cc1 = next(Path(view.install_dir).rglob("cc1"))  # the compiler proper, 30 MB: one byte in the middle
    with cc1.open("r+b") as handle:
        handle.seek(cc1.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0x01]))
    builds: list[object] = []
    monkeypatch.setattr(jobs, "build_and_verify", lambda *a, **k: builds.append(a) or pytest.fail("built anyway"))

    translation_id = create(sqlite_db, [])
    assert TranslationJob(sqlite_db, env, Actor("worker", job_id="msg-T")).run(translation_id) == "failed"
    assert builds == []
    with sqlite_db.scope(write=False) as session:
        row = TranslationRepository(session).get(translation_id)
        assert row is not None and row.error is not None
        assert row.error["code"] == "toolchain-integrity" and "quarantined" in row.error["detail"]
        assert "cc1" in str(row.error["evidence"])
        [event] = AuditRepository(session).recent(1, action="toolchain.quarantined")
        assert event.job_id == "msg-T" and event.subject_id.endswith("/host-gcc")
    assert env.toolchains.show("host-gcc").state == "quarantined"
