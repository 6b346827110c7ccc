"""The API contract: msgspec structs for request bodies and responses (and so for the OpenAPI schema)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec

from sigforge.db.models import Translation

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
