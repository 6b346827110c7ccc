"""Translation use cases for the API, the console and the CLI: create (validate, store, enqueue after commit),
read, list, and fetch the report and artifact.

A translation is parsed when it is created, so a bad algorithm is refused with its location before anything is
written or queued; the worker later does the expensive part (see ``services.jobs``).
"""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import msgspec
from sqlalchemy.orm import Session

from sigforge.db.models import Artifact, Translation, TranslationStatus
from sigforge.db.repositories import ArtifactRepository, AuditRepository, Page, TranslationRepository
from sigforge.db.session import after_commit
from sigforge.db.types import utcnow
from sigforge.dsp import pipeline
from sigforge.errors import Conflict, InvalidInput, NotFound
from sigforge.services.context import Actor
from sigforge.services.packaging import unpack
from sigforge.settings import LimitSettings

Dispatch = Callable[[str], object]


class NewTranslation(msgspec.Struct, frozen=True, kw_only=True):
    """What a user asks for: the algorithm source and the interface it is to be built for."""

    source: str
    target: str = "host-c"
    input_dtype: str = "float32"
    frame_length: int
    entry: str | None = None
    sample_rate: float | None = None


def to_request(new: NewTranslation | Translation) -> pipeline.TranslationRequest:
    sample_rate = new.sample_rate if isinstance(new, NewTranslation) else new.options.get("sample_rate")
    return pipeline.TranslationRequest(
        target=new.target,
        input_dtype=new.input_dtype,
        frame_length=new.frame_length,
        entry=new.entry,
        sample_rate=sample_rate,
    )


class TranslationService:
    """Create and read translations. Never commits: the caller's ``Database.scope()`` does."""

    def __init__(self, session: Session, *, limits: LimitSettings, actor: Actor, dispatch: Dispatch | None = None):
        self.session = session
        self.limits = limits
        self.actor = actor
        self.dispatch = dispatch
        self.translations = TranslationRepository(session)
        self.artifacts = ArtifactRepository(session)
        self.audit = AuditRepository(session)

    def _validate_limits(self, new: NewTranslation) -> None:
        size = len(new.source.encode("utf-8", errors="surrogatepass"))
        if size > self.limits.max_source_bytes:
            raise InvalidInput(
                f"the source is {size} bytes; the limit is {self.limits.max_source_bytes}", pointer="/source"
            )
        if not 0 < new.frame_length <= self.limits.max_frame_length:
            raise InvalidInput(
                f"frame_length must be between 1 and {self.limits.max_frame_length}, got {new.frame_length}",
                pointer="/frame_length",
            )
        if new.sample_rate is not None and not new.sample_rate > 0:
            raise InvalidInput("sample_rate must be a positive number of samples per second", pointer="/sample_rate")

    def create(self, new: NewTranslation) -> Translation:
        """Validate ``new`` fully (limits, then the translator's front end), store it and enqueue its job.

        Raises:
            InvalidInput: a limit is exceeded or the algorithm is refused (with its source location).
            UnsupportedTarget: the target or input dtype is not known.
        """
        self._validate_limits(new)
        checked = pipeline.check(new.source, to_request(new))
        translation = self.translations.add(
            Translation(
                id=str(uuid.uuid4()),
                status=TranslationStatus.QUEUED,
                source=new.source,
                source_sha256=hashlib.sha256(new.source.encode("utf-8", errors="surrogatepass")).hexdigest(),
                entry=checked.entry,
                target=new.target,
                input_dtype=new.input_dtype,
                frame_length=new.frame_length,
                options={"sample_rate": new.sample_rate} if new.sample_rate is not None else {},
                attempts=0,
            )
        )
        self._audit("translation.created", translation.id, target=new.target, entry=checked.entry,
                    frame_length=new.frame_length)  # fmt: skip
        if self.dispatch is not None:
            after_commit(self.session, functools.partial(self.dispatch, translation.id))
        return translation

    def redispatch_stale(self, *, older_than_s: float) -> list[str]:
        """Send the job again for translations ``queued`` longer than ``older_than_s``.

        Closes the gap between "committed" and "sent": if the broker was unreachable right after a commit, the row
        stays queued with no message. A duplicate message is harmless: the job's claim lets only one message run it.
        """
        if self.dispatch is None:
            return []
        cutoff = utcnow() - timedelta(seconds=older_than_s)
        stale = self.translations.stale(TranslationStatus.QUEUED, before=cutoff)
        dispatch = self.dispatch
        for translation_id in stale:
            self.translations.touch(translation_id)
            self._audit("translation.redispatched", translation_id, queued_longer_than_s=older_than_s)
            after_commit(self.session, functools.partial(dispatch, translation_id))
        return stale

    def fail_lost(self, *, started_more_than_s: float) -> list[str]:
        """End as ``failed`` the translations ``running`` for longer than any job may run.

        A job past its time limit has been stopped by the worker, or its message was dead-lettered (retries
        exhausted, or it killed its worker too often): nothing will ever finish the row, so say so instead of
        leaving it ``running`` forever. A late redelivery then finds it final and does nothing.
        """
        cutoff = utcnow() - timedelta(seconds=started_more_than_s)
        lost = self.translations.stale(TranslationStatus.RUNNING, before=cutoff)
        for translation_id in lost:
            error = {
                "code": "job-lost",
                "title": "Job lost",
                "detail": f"the job did not finish within {started_more_than_s:.0f} s of starting (worker crash, time "
                "limit or dead-lettered message); submit the translation again",
            }
            if self.translations.finish(translation_id, status=TranslationStatus.FAILED, error=error):
                self._audit("translation.lost", translation_id, running_longer_than_s=started_more_than_s)
        return lost

    def _audit(self, action: str, translation_id: str, **detail: Any) -> None:
        self.audit.record(
            actor=self.actor.name,
            action=action,
            subject_type="translation",
            subject_id=translation_id,
            request_id=self.actor.request_id,
            detail=detail,
        )

    def get(self, translation_id: str) -> Translation:
        translation = self.translations.get(translation_id)
        if translation is None:
            raise NotFound(f"no translation with id {translation_id!r}")
        return translation

    def page(self, *, limit: int, cursor: str | None = None, status: str | None = None) -> Page:
        if not 0 < limit <= self.limits.page_size_max:
            raise InvalidInput(f"limit must be between 1 and {self.limits.page_size_max}", pointer="limit")
        if status is not None and status not in TranslationStatus.__members__.values():
            known = ", ".join(s.value for s in TranslationStatus)
            raise InvalidInput(f"unknown status {status!r}; expected one of {known}", pointer="status")
        return self.translations.page(limit=limit, cursor=cursor, status=status)

    def report(self, translation_id: str) -> dict[str, Any]:
        translation = self.get(translation_id)
        if translation.report is None:
            raise Conflict(f"translation {translation_id} has no report yet (status: {translation.status})")
        return translation.report

    def artifact(self, translation_id: str) -> Artifact:
        translation = self.get(translation_id)
        if translation.artifact_sha256 is None:
            raise Conflict(f"translation {translation_id} has no artifact yet (status: {translation.status})")
        artifact = self.artifacts.get(translation.artifact_sha256)
        if artifact is None:  # the foreign key makes this impossible unless the database was edited by hand
            raise NotFound(f"artifact {translation.artifact_sha256} is missing")
        return artifact

    def artifact_files(self, translation_id: str) -> dict[str, bytes]:
        return unpack(self.artifact(translation_id).content)

    def artifact_file(self, translation_id: str, path: str) -> bytes:
        files = self.artifact_files(translation_id)
        if path not in files:
            raise NotFound(f"translation {translation_id} has no file {path!r}")
        return files[path]
