"""Update requests: a verified release bundle an admin uploaded, waiting for the privileged runner
(``sigforge update run-requests``) to apply it, and what the services need to find that runner's inputs.

``<data_dir>/updates/requests/<id>.bundle`` (the verified copy) and ``<id>.json`` (this record) are renamed into place,
the bundle first, so that a record always has its bundle. At most one request is pending. Also here, because both
the web service and ``sigforge up`` need them without the CLI's options: the layout prefix of the release the code
runs from, and whether some process holds the update lock (read from ``/proc/locks``, never by locking).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import msgspec

import sigforge
from sigforge.fsutil import atomic_write

REQUESTS_DIR = "requests"  # below <data_dir>/updates
PROC_LOCKS = Path("/proc/locks")


class UpdateRequest(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    version: str  # the verified bundle's release version
    requested_by: str  # the admin's user name
    requested_at: datetime


def request_files(directory: Path, request_id: str) -> tuple[Path, Path]:
    """The bundle and the record of request ``request_id`` in ``directory``."""
    return directory / f"{request_id}.bundle", directory / f"{request_id}.json"


def load_request(directory: Path) -> UpdateRequest | None:
    """The pending request (the oldest complete record), or None.

    Raises:
        ValueError: a record is damaged.
    """
    try:
        records = sorted(p for p in directory.iterdir() if p.suffix == ".json" and not p.name.startswith("."))
    except FileNotFoundError:
        return None
    for path in records:
        try:
            request = msgspec.json.decode(path.read_bytes(), type=UpdateRequest, strict=True)
        except FileNotFoundError:
            continue  # taken meanwhile
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ValueError(f"the update request {path} is damaged: {exc}") from exc
        if request_files(directory, request.id)[0].is_file():
            return request
    return None


def save_request(directory: Path, request: UpdateRequest) -> None:
    atomic_write(request_files(directory, request.id)[1], msgspec.json.encode(request), mode=0o644)


def remove_request(directory: Path, request_id: str) -> None:
    """Delete a request's files, the record first (a bundle without a record is never taken)."""
    bundle, record = request_files(directory, request_id)
    record.unlink(missing_ok=True)
    bundle.unlink(missing_ok=True)


def release_prefix(code: Sequence[Path] | None = None) -> Path:
    """The layout prefix of the release this code runs from (``<prefix>/opt/sigforge/releases/<version>/...``), or
    ``/`` (the CLI's default) when it does not run from a release tree."""
    candidates = code if code is not None else (Path(sigforge.__file__), Path(sys.executable))
    for path in candidates:
        try:
            resolved = path.resolve()
        except OSError:
            continue
        for release in resolved.parents:
            releases = release.parent
            if (
                releases.name == "releases"
                and releases.parent.name == "sigforge"
                and releases.parent.parent.name == "opt"
            ):
                return releases.parent.parent.parent
    return Path("/")


def lock_held(lock: Path, proc_locks: Path = PROC_LOCKS) -> bool | None:
    """Whether some process holds a lock on ``lock`` (from ``/proc/locks``, never by locking); None if unknowable."""
    try:
        st = lock.stat()
    except FileNotFoundError:
        return False  # never created: no updater ever ran here
    except OSError:
        return None
    try:
        table = proc_locks.read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    needle = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    # "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; a blocked waiter's line starts with "1: ->".
    return any(needle in line.split() for line in table.splitlines() if "->" not in line)
