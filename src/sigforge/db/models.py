"""Tables, and nothing else: no queries here (see ``repositories``).

Invariants:
- ``artifacts`` are content-addressed: the primary key is the SHA-256 of ``content``; a row is never updated.
- a ``translations`` row moves queued → running → (verified | failed_verification | failed); a terminal status is
  final, which is what makes a redelivered job a no-op. While ``running``, ``job_id`` names the message that
  claimed it: only a redelivery of that message (a crashed worker) may claim it again.
- ``audit_events`` are append-only.
- a ``toolchains`` row describes one toolchain installed on one node (``node``: the machine whose disk holds the
  files); ``manifest`` holds the signed manifest exactly as verified at import (it is re-verified before use), and
  ``state`` is ``verified`` or ``quarantined``. A quarantined toolchain is never used again until it is re-imported.
- ``users.password_hash`` is a self-describing scrypt hash (``services.passwords``), never a password;
  ``api_tokens`` keep only the SHA-256 of a sign-in token, so a copy of the database (or a backup) cannot be used
  to sign in. Deleting a user deletes their tokens.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from sigforge.db.types import UTCDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TranslationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    VERIFIED = "verified"
    FAILED_VERIFICATION = "failed_verification"
    FAILED = "failed"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset(
    {TranslationStatus.VERIFIED, TranslationStatus.FAILED_VERIFICATION, TranslationStatus.FAILED}
)
_STATUS_VALUES = ", ".join(f"'{s.value}'" for s in TranslationStatus)

# SQLite only auto-increments an INTEGER PRIMARY KEY, so BIGINT becomes INTEGER there.
BigIntId = BigInteger().with_variant(Integer(), "sqlite")


class Artifact(Base):
    __tablename__ = "artifacts"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Translation(Base):
    __tablename__ = "translations"
    __table_args__ = (
        CheckConstraint(f"status IN ({_STATUS_VALUES})", name="status_known"),
        CheckConstraint("frame_length > 0", name="frame_length_positive"),
        Index("ix_translations_created_at_id", "created_at", "id"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(32), index=True)
    source: Mapped[str] = mapped_column(Text)
    source_sha256: Mapped[str] = mapped_column(String(64))
    entry: Mapped[str] = mapped_column(String(200))
    target: Mapped[str] = mapped_column(String(32))
    input_dtype: Mapped[str] = mapped_column(String(16))
    frame_length: Mapped[int] = mapped_column(Integer)
    options: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # The broker message that holds the current claim: its redelivery may take over, a duplicate may not.
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    max_abs_error: Mapped[float | None] = mapped_column(Float, nullable=True)
    artifact_sha256: Mapped[str | None] = mapped_column(
        String(64), ForeignKey("artifacts.sha256", ondelete="RESTRICT"), nullable=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class AuditEvent(Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_subject", "subject_type", "subject_id"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    job_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class ToolchainState(StrEnum):
    VERIFIED = "verified"
    QUARANTINED = "quarantined"


_TOOLCHAIN_STATES = ", ".join(f"'{s.value}'" for s in ToolchainState)


class Toolchain(Base):
    __tablename__ = "toolchains"
    __table_args__ = (
        CheckConstraint(f"state IN ({_TOOLCHAIN_STATES})", name="state_known"),
        UniqueConstraint("node", "name", name="uq_toolchains_node_name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    node: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[str] = mapped_column(String(64))
    # The signed manifest (canonical bytes) and its signatures as verified at import; re-verified on every read.
    manifest: Mapped[bytes] = mapped_column(LargeBinary)
    signatures: Mapped[bytes] = mapped_column(LargeBinary)
    manifest_sha256: Mapped[str] = mapped_column(String(64))
    targets: Mapped[list[str]] = mapped_column(JSON, default=list)
    install_dir: Mapped[str] = mapped_column(Text)
    file_count: Mapped[int] = mapped_column(Integer)
    total_bytes: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)
    state_detail: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_full_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Role(StrEnum):
    ADMIN = "admin"
    ENGINEER = "engineer"


_ROLES = ", ".join(f"'{r.value}'" for r in Role)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(f"role IN ({_ROLES})", name="role_known"),
        UniqueConstraint("name", name="uq_users_name"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(255))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    # Consecutive failed sign-ins, and until when sign-in is refused after too many (a brute-force brake).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class ApiToken(Base):
    """A sign-in session: the bearer token (or console cookie) is only ever stored as its SHA-256."""

    __tablename__ = "api_tokens"
    __table_args__ = (UniqueConstraint("token_sha256", name="uq_api_tokens_token_sha256"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(String(36), ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
