"""The translation job: what a worker does with one translation id.

Idempotent on the translation id, so redelivery after a crash is safe:
- ``claim`` moves the row to ``running`` only from ``queued``/``running``; a terminal row makes the job a no-op;
- the expensive work (translate, build, run, compare) happens outside any transaction;
- ``finish`` records the outcome only while the row is still ``running``, so an outcome is written exactly once.

Domain failures (the algorithm, the toolchain) end the translation as ``failed`` with the reason; anything else
(the database went away, a bug) propagates so that the broker retries and, in the end, dead-letters the message.
"""

from __future__ import annotations

import math
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sigforge.db.models import TranslationStatus
from sigforge.db.repositories import ArtifactRepository, AuditRepository, TranslationRepository
from sigforge.db.session import Database
from sigforge.dsp import pipeline
from sigforge.errors import DomainError, InvalidInput, NotFound, ToolchainError, ToolchainIntegrityError
from sigforge.logging import get_logger
from sigforge.services.context import Actor
from sigforge.services.packaging import ARCHIVE_MEDIA_TYPE, pack
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.services.translations import to_request
from sigforge.services.verification import VerificationOutcome, build_and_verify
from sigforge.settings import Settings
from sigforge.toolchains.host import HostCompiler
from sigforge.toolchains.runner import ProcessRunner

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class BuildEnvironment:
    """What a build needs: the sandboxed runner, this node's toolchain registry and the limits."""

    runner: ProcessRunner
    toolchains: ToolchainRegistry
    settings: Settings

    @classmethod
    def from_settings(cls, settings: Settings, db: Database) -> BuildEnvironment:
        runner = ProcessRunner(network=settings.sandbox.network)
        return cls(runner=runner, toolchains=ToolchainRegistry(db, settings, runner), settings=settings)


def verify_source(
    source: str, request: pipeline.TranslationRequest, env: BuildEnvironment, *, scratch: Path, actor: Actor
) -> VerificationOutcome:
    """Translate, build and verify in a private directory below ``scratch`` (shared by the worker and the CLI).

    The algorithm is translated first (a bad one is refused without touching a toolchain); then the target's
    toolchain is resolved from the registry, which checks its files against the signed manifest just before use.
    """
    plan = pipeline.translate(source, request)
    toolchain = env.toolchains.resolve(request.target, actor)
    cc = HostCompiler(
        str(toolchain.tool("cc")),
        f"{toolchain.name} {toolchain.version}: {toolchain.entry_points['cc'].version}",
        toolchain.environment(),
    )
    with tempfile.TemporaryDirectory(prefix="sigforge-build-", dir=scratch) as work:
        return build_and_verify(plan, runner=env.runner, limits=env.settings.limits, workdir=Path(work), cc=cc)


def _error_record(exc: DomainError) -> dict[str, Any]:
    record: dict[str, Any] = {"code": exc.code, "title": type(exc).__name__, "detail": exc.message}
    if exc.location is not None:
        record["location"] = exc.location.as_dict()
    if exc.detail:
        record["evidence"] = exc.detail
    return record


class TranslationJob:
    """Runs one translation job against a database and a build environment."""

    def __init__(self, db: Database, env: BuildEnvironment, actor: Actor) -> None:
        self.db = db
        self.env = env
        self.actor = actor

    def _audit(self, repo: AuditRepository, action: str, translation_id: str, **detail: Any) -> None:
        repo.record(
            actor=self.actor.name,
            action=action,
            subject_type="translation",
            subject_id=translation_id,
            job_id=self.actor.job_id,
            detail=detail,
        )

    def run(self, translation_id: str) -> TranslationStatus | None:
        """Do the job; returns the status it recorded, or None when there was nothing to do."""
        with self.db.scope() as session:
            translations = TranslationRepository(session)
            row = translations.get(translation_id)
            if row is None:
                raise NotFound(f"no translation with id {translation_id!r}")
            # A job without a broker message (run in-process) claims with a one-off id.
            job_id = self.actor.job_id or f"local-{uuid.uuid4().hex}"
            if not translations.claim(translation_id, job_id):
                log.info("job.skipped", translation_id=translation_id, status=row.status, claimed_by=row.job_id)
                return None
            session.refresh(row)
            source, request, attempt = row.source, to_request(row), row.attempts
            self._audit(AuditRepository(session), "translation.started", translation_id, attempt=attempt)
        log.info("job.started", translation_id=translation_id, attempt=attempt, target=request.target)

        scratch = self.env.settings.data_path / "tmp"
        scratch.mkdir(parents=True, exist_ok=True)
        try:
            outcome = verify_source(source, request, self.env, scratch=scratch, actor=self.actor)
        except (InvalidInput, ToolchainError, ToolchainIntegrityError) as exc:
            return self._fail(translation_id, exc)

        archive = pack(outcome.files, root=f"sigforge-{translation_id[:8]}")
        status = TranslationStatus.VERIFIED if outcome.verified else TranslationStatus.FAILED_VERIFICATION
        with self.db.scope() as session:
            digest = ArtifactRepository(session).put(archive, ARCHIVE_MEDIA_TYPE)
            error = None
            if not outcome.verified:
                error = {
                    "code": "verification-failed",
                    "title": "Verification failed",
                    "detail": outcome.summary,
                }
            finished = TranslationRepository(session).finish(
                translation_id,
                status=status,
                report=outcome.report,
                # inf/nan (a vector that crashed) cannot be stored as a number: the report holds the evidence.
                max_abs_error=outcome.max_abs_error if math.isfinite(outcome.max_abs_error) else None,
                artifact_sha256=digest,
                error=error,
            )
            if finished:
                self._audit(
                    AuditRepository(session),
                    f"translation.{status.value}",
                    translation_id,
                    artifact_sha256=digest,
                    max_abs_error=outcome.max_abs_error if math.isfinite(outcome.max_abs_error) else None,
                )
        log.info("job.finished", translation_id=translation_id, status=status.value, recorded=finished)
        return status if finished else None

    def _fail(self, translation_id: str, exc: DomainError) -> TranslationStatus | None:
        with self.db.scope() as session:
            finished = TranslationRepository(session).finish(
                translation_id, status=TranslationStatus.FAILED, error=_error_record(exc)
            )
            if finished:
                self._audit(AuditRepository(session), "translation.failed", translation_id, reason=exc.message)
        log.warning("job.failed", translation_id=translation_id, error=str(exc))
        return TranslationStatus.FAILED if finished else None
