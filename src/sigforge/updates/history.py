"""The update history: one record per finished operation (committed, rolled back, rejected), newest last, in
``<data_dir>/updates/history.json`` (written atomically; re-recording an id replaces its record, so finishing an
interrupted operation twice cannot duplicate it)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import msgspec

from sigforge.fsutil import atomic_write

Result = Literal["committed", "rolled-back", "rollback-unhealthy", "rejected"]
MAX_RECORDS = 1000


class HistoryRecord(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    operation: Literal["apply", "rollback"]
    previous: str | None
    target: str | None
    started: datetime
    finished: datetime
    result: Result
    reached: str | None = None  # the furthest step begun
    error: str | None = None
    backup_dir: str | None = None  # kept after a commit: what `sigforge update rollback` restores
    steps: tuple[str, ...] = ()  # the audit actions of the operation, in order
    actor: str | None = None  # who ran it ("cli:update", "web:<admin>" for a request from the console)


def load_history(path: Path) -> list[HistoryRecord]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    try:
        return msgspec.json.decode(data, type=list[HistoryRecord], strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        raise ValueError(f"the update history {path} is damaged: {exc}") from exc


def record_history(path: Path, record: HistoryRecord) -> None:
    records = [r for r in load_history(path) if r.id != record.id]
    records.append(record)
    atomic_write(path, msgspec.json.encode(records[-MAX_RECORDS:]), mode=0o644)
