"""The persisted trust state: a time floor and the highest version seen of each bundle, both only moving forward.

The floor is the latest *signed* time the box has accepted (a manifest's ``created``). Verification uses
``max(clock, floor)`` as "now", so a clock set backwards cannot make expired metadata pass; the floor never follows
the local clock itself, so a clock set far forward by mistake cannot make every bundle look expired for good.

The file (``<trust_dir>/state.json``) is written atomically: a temp file in the same directory, fsync, rename,
fsync of the directory. An unreadable or malformed state file is an ``IntegrityError``: verification fails closed
rather than starting again from an empty floor.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import msgspec

from sigforge import fsutil
from sigforge.bundles.manifest import Manifest, UtcTime, canonical_bytes
from sigforge.bundles.version import Version
from sigforge.errors import IntegrityError, InvalidInput

STATE_FILE = "state.json"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class TrustState(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    schema: Literal[1] = 1
    time_floor: UtcTime = EPOCH
    versions: dict[str, str] = {}  # "kind/name" -> the highest version accepted

    def effective_now(self, now: datetime) -> datetime:
        """The time verification uses: the clock, but never earlier than the floor."""
        return max(now, self.time_floor)

    def last_seen(self, kind: str, name: str) -> Version | None:
        text = self.versions.get(f"{kind}/{name}")
        return Version.parse(text) if text is not None else None

    def advanced(self, manifest: Manifest) -> TrustState:
        """The state after accepting ``manifest``: floor and version move forward, never back."""
        versions = dict(self.versions)
        key = f"{manifest.kind}/{manifest.name}"
        seen = self.last_seen(manifest.kind, manifest.name)
        if seen is None or manifest.parsed_version > seen:
            versions[key] = manifest.version
        return TrustState(time_floor=max(self.time_floor, manifest.created), versions=versions)


def load_state(path: Path) -> TrustState:
    """Read the state; a missing file is the empty state.

    Raises:
        IntegrityError: the file exists but cannot be read or is malformed.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return TrustState()
    except OSError as exc:
        raise IntegrityError(f"cannot read the trust state {path}: {exc.strerror}") from exc
    try:
        state = msgspec.json.decode(data, type=TrustState, strict=True)
        for text in state.versions.values():
            Version.parse(text)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, InvalidInput) as exc:
        raise IntegrityError(f"the trust state {path} is damaged ({exc}); restore it from backup") from exc
    return state


def atomic_write(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file (world-readable: the trust
    root and state are public)."""
    fsutil.atomic_write(path, data, mode)


def save_state(path: Path, state: TrustState) -> None:
    """Persist ``state`` atomically, refusing to move the floor or a version backwards.

    Raises:
        IntegrityError: ``state`` is behind the stored state (a caller bug that would weaken rollback protection).
    """
    current = load_state(path)
    if state.time_floor < current.time_floor:
        raise IntegrityError("refusing to move the trust time floor backwards")
    for key, text in current.versions.items():
        new = state.versions.get(key)
        if new is None or Version.parse(new) < Version.parse(text):
            raise IntegrityError(f"refusing to move the last seen version of {key} backwards")
    atomic_write(path, canonical_bytes(state))


def record_accepted(path: Path, manifest: Manifest) -> TrustState:
    """Advance the persisted state past an accepted (verified and installed) bundle; return the new state."""
    state = load_state(path).advanced(manifest)
    save_state(path, state)
    return state
