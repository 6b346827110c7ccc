"""Repositories: the only code that builds queries. Each takes a Session and never commits it."""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from sigforge.db.models import (
    ApiToken,
    Artifact,
    AuditEvent,
    Role,
    Toolchain,
    ToolchainState,
    Translation,
    TranslationStatus,
    User,
)
from sigforge.db.types import utcnow
from sigforge.errors import InvalidInput


@dataclass(frozen=True, slots=True)
class Page:
    items: Sequence[Translation]
    next_cursor: str | None


def _encode_cursor(row: Translation) -> str:
    raw = f"{row.created_at.isoformat()}|{row.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        stamp, _, ident = raw.partition("|")
        return datetime.fromisoformat(stamp), ident
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise InvalidInput("the pagination cursor is malformed", pointer="cursor") from exc


class TranslationRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, translation: Translation) -> Translation:
        self.session.add(translation)
        self.session.flush()
        return translation

    def get(self, translation_id: str) -> Translation | None:
        return self.session.get(Translation, translation_id)

    def count(self) -> int:
        return int(self.session.scalar(select(func.count()).select_from(Translation)) or 0)

    def page(self, *, limit: int, cursor: str | None = None, status: str | None = None) -> Page:
        """Newest first, keyset-paginated on (created_at, id) so pages stay stable while rows are added."""
        query = select(Translation).order_by(Translation.created_at.desc(), Translation.id.desc())
        if status is not None:
            query = query.where(Translation.status == status)
        if cursor:
            stamp, ident = _decode_cursor(cursor)
            query = query.where(
                or_(
                    Translation.created_at < stamp,
                    and_(Translation.created_at == stamp, Translation.id < ident),
                )
            )
        rows = list(self.session.scalars(query.limit(limit + 1)))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, _encode_cursor(rows[-1]) if more and rows else None)

    def claim(self, translation_id: str, job_id: str) -> bool:
        """Move the translation to ``running`` for message ``job_id`` and count the attempt.

        Succeeds from ``queued``, or from ``running`` when ``job_id`` is the message that claimed it before (the
        broker redelivered it after its worker died). A different message for a running or finished translation
        (a duplicate send) gets False and must do nothing.
        """
        now = utcnow()
        result = self.session.execute(
            update(Translation)
            .where(
                Translation.id == translation_id,
                or_(
                    Translation.status == TranslationStatus.QUEUED,
                    and_(Translation.status == TranslationStatus.RUNNING, Translation.job_id == job_id),
                ),
            )
            .values(
                status=TranslationStatus.RUNNING,
                job_id=job_id,
                attempts=Translation.attempts + 1,
                started_at=now,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def stale(self, status: TranslationStatus, *, before: datetime, limit: int = 1000) -> list[str]:
        """Ids of translations in ``status`` since before ``before``, oldest first.

        ``queued`` counts from the last (re)dispatch (``updated_at``), ``running`` from the claim (``started_at``).
        """
        since = Translation.started_at if status is TranslationStatus.RUNNING else Translation.updated_at
        query = select(Translation.id).where(Translation.status == status, since < before).order_by(since).limit(limit)
        return list(self.session.scalars(query))

    def touch(self, translation_id: str) -> None:
        self.session.execute(
            update(Translation)
            .where(Translation.id == translation_id)
            .values(updated_at=utcnow())
            .execution_options(synchronize_session=False)
        )

    def finish(self, translation_id: str, *, status: TranslationStatus, **values: Any) -> bool:
        """Record the outcome once: only a ``running`` translation can finish (a redelivered duplicate cannot)."""
        assert status.terminal
        now = utcnow()
        result = self.session.execute(
            update(Translation)
            .where(Translation.id == translation_id, Translation.status == TranslationStatus.RUNNING)
            .values(status=status, finished_at=now, updated_at=now, **values)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)  # type: ignore[attr-defined]


class ArtifactRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def put(self, content: bytes, media_type: str) -> str:
        """Store ``content`` under its SHA-256 (idempotent) and return the digest."""
        digest = hashlib.sha256(content).hexdigest()
        if self.session.get(Artifact, digest) is None:
            self.session.add(Artifact(sha256=digest, size=len(content), media_type=media_type, content=content))
            self.session.flush()
        return digest

    def get(self, sha256: str) -> Artifact | None:
        return self.session.get(Artifact, sha256)


class ToolchainRepository:
    """Toolchains installed on nodes; every query is scoped to one node (the machine whose disk holds the files)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, toolchain: Toolchain) -> Toolchain:
        self.session.add(toolchain)
        self.session.flush()
        return toolchain

    def get(self, node: str, name: str, *, for_update: bool = False) -> Toolchain | None:
        query = select(Toolchain).where(Toolchain.node == node, Toolchain.name == name)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def all(self, node: str) -> list[Toolchain]:
        return list(self.session.scalars(select(Toolchain).where(Toolchain.node == node).order_by(Toolchain.name)))

    def remove(self, toolchain: Toolchain) -> None:
        self.session.delete(toolchain)
        self.session.flush()

    def set_state(self, toolchain_id: str, state: ToolchainState, detail: dict[str, Any] | None) -> None:
        self.session.execute(
            update(Toolchain)
            .where(Toolchain.id == toolchain_id)
            .values(state=state, state_detail=detail)
            .execution_options(synchronize_session=False)
        )

    def checked(self, toolchain_id: str, *, full: bool) -> None:
        """Record a successful use (and, for a full re-hash, when it happened)."""
        now = utcnow()
        values: dict[str, Any] = {"last_used_at": now}
        if full:
            values["last_full_check_at"] = now
        self.session.execute(
            update(Toolchain)
            .where(Toolchain.id == toolchain_id, Toolchain.state == ToolchainState.VERIFIED)
            .values(**values)
            .execution_options(synchronize_session=False)
        )


class UserRepository:
    """Users and their sign-in tokens (stored only as SHA-256 digests)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, user: User) -> User:
        self.session.add(user)
        self.session.flush()
        return user

    def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        return self.session.get(User, user_id, with_for_update=for_update)

    def by_name(self, name: str, *, for_update: bool = False) -> User | None:
        query = select(User).where(User.name == name)
        if for_update:
            query = query.with_for_update()
        return self.session.scalars(query).one_or_none()

    def all(self) -> list[User]:
        return list(self.session.scalars(select(User).order_by(User.name)))

    def count_admins(self, *, enabled_only: bool = False) -> int:
        query = select(func.count()).select_from(User).where(User.role == Role.ADMIN)
        if enabled_only:
            query = query.where(User.disabled.is_(False))
        return int(self.session.scalar(query) or 0)

    def add_token(self, token: ApiToken) -> ApiToken:
        self.session.add(token)
        self.session.flush()
        return token

    def token_with_user(self, token_sha256: str) -> tuple[ApiToken, User] | None:
        query = select(ApiToken, User).join(User, ApiToken.user_id == User.id)
        row = self.session.execute(query.where(ApiToken.token_sha256 == token_sha256)).one_or_none()
        return (row[0], row[1]) if row is not None else None

    def touch_token(self, token_id: str, when: datetime) -> None:
        self.session.execute(
            update(ApiToken)
            .where(ApiToken.id == token_id)
            .values(last_used_at=when)
            .execution_options(synchronize_session=False)
        )

    def delete_token(self, token_id: str) -> None:
        self.session.execute(
            delete(ApiToken).where(ApiToken.id == token_id).execution_options(synchronize_session=False)
        )

    def delete_tokens(self, user_id: str, *, keep: str | None = None) -> int:
        """Revoke every token of ``user_id`` (but ``keep``, when given); returns how many went."""
        query = delete(ApiToken).where(ApiToken.user_id == user_id)
        if keep is not None:
            query = query.where(ApiToken.id != keep)
        result = self.session.execute(query.execution_options(synchronize_session=False))
        return int(result.rowcount)  # type: ignore[attr-defined]

    def delete_expired_tokens(self, now: datetime) -> int:
        query = delete(ApiToken).where(ApiToken.expires_at <= now).execution_options(synchronize_session=False)
        return int(self.session.execute(query).rowcount)  # type: ignore[attr-defined]


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(
        self,
        *,
        actor: str,
        action: str,
        subject_type: str,
        subject_id: str,
        request_id: str | None = None,
        job_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> AuditEvent:
        event = AuditEvent(
            actor=actor,
            action=action,
            subject_type=subject_type,
            subject_id=subject_id,
            request_id=request_id,
            job_id=job_id,
            detail=detail or {},
        )
        self.session.add(event)
        return event

    def for_subject(self, subject_type: str, subject_id: str) -> list[AuditEvent]:
        query = (
            select(AuditEvent)
            .where(AuditEvent.subject_type == subject_type, AuditEvent.subject_id == subject_id)
            .order_by(AuditEvent.id)
        )
        return list(self.session.scalars(query))

    def recent(self, limit: int = 100, action: str | None = None) -> list[AuditEvent]:
        query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
        if action is not None:
            query = query.where(AuditEvent.action == action)
        return list(self.session.scalars(query))
