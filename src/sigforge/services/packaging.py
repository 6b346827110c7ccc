"""Artifact archives: a deterministic .tar.gz of a flat file map, and the reverse with safety checks.

Deterministic (sorted names, zero mtimes, fixed owner and modes, no gzip timestamp) so that the same files always
give the same bytes and therefore the same content address.
"""

from __future__ import annotations

import gzip
import io
import tarfile
from collections.abc import Mapping
from pathlib import PurePosixPath

from sigforge.errors import IntegrityError

ARCHIVE_MEDIA_TYPE = "application/gzip"
_MAX_MEMBERS = 10_000


def _member_name(root: str, path: str) -> str:
    pure = PurePosixPath(path)
    if pure.is_absolute() or ".." in pure.parts or not pure.parts:
        raise IntegrityError(f"refusing to archive an unsafe path: {path!r}")
    return str(PurePosixPath(root) / pure)


def pack(files: Mapping[str, bytes], *, root: str) -> bytes:
    """A reproducible gzip'd tar of ``files`` under the directory ``root``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(files):
            data = files[path]
            info = tarfile.TarInfo(_member_name(root, path))
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            info.uname = info.gname = "sigforge"
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def unpack(archive: bytes) -> dict[str, bytes]:
    """The regular files of an archive made by :func:`pack`, keyed by path below its root directory."""
    files: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        for count, member in enumerate(tar):
            if count >= _MAX_MEMBERS:
                raise IntegrityError("artifact archive has too many members")
            if not member.isfile():
                raise IntegrityError(f"artifact archive holds a non-file member: {member.name!r}")
            parts = PurePosixPath(member.name).parts
            if len(parts) < 2 or ".." in parts or member.name.startswith("/"):
                raise IntegrityError(f"artifact archive holds an unsafe path: {member.name!r}")
            extracted = tar.extractfile(member)
            assert extracted is not None
            files[str(PurePosixPath(*parts[1:]))] = extracted.read()
    return files
