"""The API contract: msgspec structs for request bodies and responses (and so for the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

import msgspec

from sigforge.db.models import Translation
from sigforge.services.toolchains import CheckResult, ToolchainView
from sigforge.services.users import MAX_PASSWORD, Principal
from sigforge.updates import HistoryRecord, Journal, UpdateRequest

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class TranslationCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """A translation request: the algorithm and the interface to build it for."""

    source: Annotated[str, msgspec.Meta(min_length=1, description="Python source of the algorithm")]
    frame_length: Annotated[int, msgspec.Meta(gt=0, description="input samples per frame")]
    target: Annotated[str, msgspec.Meta(min_length=1, max_length=32)] = "host-c"
    input_dtype: Annotated[str, msgspec.Meta(min_length=1, max_length=16)] = "float32"
    entry: Name | None = None
    sample_rate: Annotated[float, msgspec.Meta(gt=0)] | None = None


class SourceLocationOut(msgspec.Struct):
    line: int
    column: int


class ErrorOut(msgspec.Struct, omit_defaults=True):
    code: str
    title: str
    detail: str
    location: SourceLocationOut | None = None


class TranslationOut(msgspec.Struct):
    id: str
    status: str
    target: str
    input_dtype: str
    frame_length: int
    entry: str
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    attempts: int
    error: ErrorOut | None
    max_abs_error: float | None
    artifact_sha256: str | None

    @classmethod
    def from_row(cls, row: Translation) -> TranslationOut:
        error = None
        if row.error:
            loc = row.error.get("location")
            error = ErrorOut(
                code=str(row.error.get("code", "error")),
                title=str(row.error.get("title", "Error")),
                detail=str(row.error.get("detail", "")),
                location=SourceLocationOut(line=loc["line"], column=loc["column"]) if loc else None,
            )
        return cls(
            id=row.id,
            status=row.status,
            target=row.target,
            input_dtype=row.input_dtype,
            frame_length=row.frame_length,
            entry=row.entry,
            created_at=row.created_at,
            updated_at=row.updated_at,
            started_at=row.started_at,
            finished_at=row.finished_at,
            attempts=row.attempts,
            error=error,
            max_abs_error=row.max_abs_error,
            artifact_sha256=row.artifact_sha256,
        )


class TranslationDetailOut(TranslationOut):
    source: str = ""


class TranslationPageOut(msgspec.Struct):
    items: list[TranslationOut]
    next_cursor: str | None


class TargetOut(msgspec.Struct):
    name: str
    description: str
    input_dtypes: list[str]
    toolchain: Annotated[
        str | None,
        msgspec.Meta(
            description="the toolchain on this node that builds this target: a verified one when there is one, "
            "else a quarantined one; null when none is installed"
        ),
    ] = None
    toolchain_state: Annotated[
        str | None,
        msgspec.Meta(description="'verified' (translations can be built here), 'quarantined' or null (none)"),
    ] = None


class TargetsOut(msgspec.Struct):
    targets: list[TargetOut]


class FileEntryOut(msgspec.Struct):
    path: str
    size: int
    sha256: str


class FilesOut(msgspec.Struct):
    files: list[FileEntryOut]


class HealthOut(msgspec.Struct):
    status: str
    checks: dict[str, Any] = msgspec.field(default_factory=dict)


class EntryPointOut(msgspec.Struct):
    role: str
    path: Annotated[str, msgspec.Meta(description="relative to the toolchain's tree")]
    version: Annotated[str, msgspec.Meta(description="the text its version output must contain")]


class ToolchainOut(msgspec.Struct):
    """One toolchain installed on this node, as its registry row says."""

    name: str
    version: str
    node: str
    state: Annotated[str, msgspec.Meta(description="'verified' or 'quarantined' (only a re-import clears it)")]
    state_detail: Annotated[
        dict[str, Any] | None,
        msgspec.Meta(description="why it is quarantined: {problems: [{path, kind, detail}], count}"),
    ]
    targets: list[str]
    entry_points: list[EntryPointOut]
    file_count: int
    total_bytes: int
    manifest_sha256: str
    install_dir: Annotated[str, msgspec.Meta(description="where its tree lives on this node (a local path)")]
    imported_at: datetime
    last_full_check_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def from_view(cls, view: ToolchainView) -> ToolchainOut:
        return cls(
            name=view.name,
            version=view.version,
            node=view.node,
            state=view.state,
            state_detail=view.state_detail,
            targets=list(view.targets),
            entry_points=[EntryPointOut(role=e.role, path=e.path, version=e.version) for e in view.entry_points],
            file_count=view.file_count,
            total_bytes=view.total_bytes,
            manifest_sha256=view.manifest_sha256,
            install_dir=view.install_dir,
            imported_at=view.imported_at,
            last_full_check_at=view.last_full_check_at,
            last_used_at=view.last_used_at,
        )


class ToolchainsOut(msgspec.Struct):
    toolchains: list[ToolchainOut]


class CheckProblemOut(msgspec.Struct):
    path: str
    kind: Annotated[
        str,
        msgspec.Meta(
            description="missing, extra, not-a-file, size, mode, hash, link, unreadable, version, manifest or "
            "quarantined"
        ),
    ]
    detail: str


class VerifyOut(msgspec.Struct):
    """The outcome of a full check; ``ok`` false means the toolchain is quarantined now."""

    name: str
    ok: bool
    problems: list[CheckProblemOut]

    @classmethod
    def from_result(cls, result: CheckResult) -> VerifyOut:
        return cls(
            name=result.name,
            ok=result.ok,
            problems=[CheckProblemOut(path=p.path, kind=p.kind, detail=p.detail) for p in result.problems],
        )


Password = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD)]


class SessionCreate(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Sign in: a user name and password."""

    name: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    password: Password


class PasswordChange(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Change one's own password (required first after signing in with a one-time password)."""

    current_password: Password
    new_password: Annotated[
        str, msgspec.Meta(min_length=1, max_length=MAX_PASSWORD, description="at least 12 characters")
    ]


class SessionOut(msgspec.Struct, omit_defaults=True):
    """Who is signed in. ``token`` is present only in the answer to the sign-in itself."""

    name: str
    role: str
    must_change_password: bool
    expires_at: datetime
    token: str | None = None

    @classmethod
    def from_principal(cls, principal: Principal, token: str | None = None) -> SessionOut:
        return cls(
            name=principal.name,
            role=principal.role,
            must_change_password=principal.must_change_password,
            expires_at=principal.expires_at,
            token=token,
        )


UpdateState = Literal["idle", "in-progress", "needs-recover", "unknown"]


class UpdateRecordOut(msgspec.Struct):
    """One finished update operation (``sigforge update history``)."""

    id: str
    operation: str  # "apply" or "rollback"
    previous: str | None  # the release before
    target: str | None  # the release installed (apply) or left (rollback)
    started: datetime
    finished: datetime
    result: str  # "committed", "rolled-back", "rollback-unhealthy" or "rejected"
    reached: str | None  # the furthest step begun
    error: str | None
    steps: list[str]  # the audit actions of the operation, in order
    actor: str | None  # who ran it: "cli:update", or "web:<admin>" for an update requested from the console

    @classmethod
    def from_record(cls, record: HistoryRecord) -> UpdateRecordOut:
        return cls(
            id=record.id,
            operation=record.operation,
            previous=record.previous,
            target=record.target,
            started=record.started,
            finished=record.finished,
            result=record.result,
            reached=record.reached,
            error=record.error,
            steps=list(record.steps),
            actor=record.actor,
        )


class UnfinishedUpdateOut(msgspec.Struct):
    """The operation the update journal holds: running now, or interrupted and awaiting ``sigforge update recover``."""

    id: str
    operation: str
    previous: str
    target: str
    started: datetime
    actor: str
    reached: str | None  # the furthest step begun
    phase: str  # "forward" or "rolling-back"
    error: str | None

    @classmethod
    def from_journal(cls, journal: Journal) -> UnfinishedUpdateOut:
        reached = journal.doing or journal.step
        return cls(
            id=journal.id,
            operation=journal.operation,
            previous=journal.previous,
            target=journal.target,
            started=journal.started,
            actor=journal.actor,
            reached=str(reached) if reached is not None else None,
            phase=journal.phase,
            error=journal.error,
        )


class UpdateRequestOut(msgspec.Struct):
    """A verified release bundle waiting for the box's update runner (``POST /api/v1/updates``)."""

    id: str
    version: str  # the release it installs
    requested_by: str
    requested_at: datetime

    @classmethod
    def from_request(cls, request: UpdateRequest) -> UpdateRequestOut:
        return cls(
            id=request.id, version=request.version, requested_by=request.requested_by,
            requested_at=request.requested_at,
        )  # fmt: skip


class UpdatesOut(msgspec.Struct):
    """The updater's view of this box (admins only): what runs, what is installed, what happened."""

    version: str  # the version of the code answering this request
    current: str | None  # the release the `current` link points at (None: not a release layout, e.g. a dev checkout)
    installed: list[str]  # complete release trees, oldest first
    state: UpdateState
    unfinished: UnfinishedUpdateOut | None
    history: list[UpdateRecordOut]  # newest first, at most `limit`
    history_total: int
    request: UpdateRequestOut | None = None  # requested from the console, not yet taken by the update runner
    problem: str | None = None  # why `state` is "unknown" (the update files could not be read)
