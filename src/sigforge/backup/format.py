"""What a backup archive says about itself: ``backup.json`` (``BackupInfo``) and ``backup.sig`` (``BackupSignature``).

``backup.json`` is canonical JSON (compact, keys sorted, every field present): the bytes that are signed. It names
the format version, the sigforge release and database schema revision it was made by, when and on which node, the
database tables (columns and their value codecs, row counts) and every payload file with its size and SHA-256.
Decoding is strict: an unknown format version is refused before anything else is read, unknown fields and unsafe
paths are refused, and nothing is trusted until the signature has been checked.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal, NoReturn

import msgspec

from sigforge.errors import BackupRejected

FORMAT_VERSION = 1
INFO_NAME, SIGNATURE_NAME, PAYLOAD_PREFIX = "backup.json", "backup.sig", "payload/"
DB_DIR, TRUST_DIR, CONFIG_DIR = "db", "trust", "config"
MAX_INFO_BYTES, MAX_SIGNATURE_BYTES = 64 * 1024**2, 64 * 1024

Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
Codec = Literal["str", "int", "bool", "float", "bytes", "datetime", "json"]
_SAFE_PART = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


class Reason(StrEnum):
    """Why an archive was refused (``BackupRejected.reason``)."""

    FORMAT = "format"  # not a backup archive, corrupt compression/tar, malformed backup.json or backup.sig
    UNKNOWN_FORMAT = "unknown-format"  # a format version this release does not know
    UNSAFE_PATH = "unsafe-path"
    BAD_SIGNATURE = "bad-signature"
    UNTRUSTED_KEY = "untrusted-key"  # signed by a key other than the one the operator/box trusts, or none to check
    FILE_MISSING = "file-missing"
    FILE_EXTRA = "file-extra"
    FILE_CHANGED = "file-changed"
    VERSION_MISMATCH = "version-mismatch"
    SCHEMA_MISMATCH = "schema-mismatch"


def reject(reason: Reason, message: str, **detail: object) -> NoReturn:
    raise BackupRejected(reason, message, detail=dict(detail))


class FileRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One payload file: ``payload/<path>`` in the archive."""

    path: str
    size: Annotated[int, msgspec.Meta(ge=0)]
    sha256: Sha256Hex


class ColumnRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    name: str
    codec: Codec


class TableRecord(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One table of the logical dump: ``payload/db/<name>.jsonl``, one JSON array per row in ``columns`` order."""

    name: str
    file: str
    columns: tuple[ColumnRecord, ...]
    rows: Annotated[int, msgspec.Meta(ge=0)]


class ToolchainNote(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A registered toolchain whose files are not in the backup: the bundle to import again after a restore."""

    node: str
    name: str
    version: str
    manifest_sha256: Sha256Hex
    targets: tuple[str, ...]
    state: str


class BackupInfo(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The signed description of one backup."""

    format: Literal[1] = 1
    backup_id: str
    sigforge_version: str
    schema_revision: str
    created: UtcTime
    node: str
    source_dialect: Literal["sqlite", "postgresql"]
    tables: tuple[TableRecord, ...]
    files: tuple[FileRecord, ...]
    toolchains: tuple[ToolchainNote, ...] = ()

    @property
    def unpacked_bytes(self) -> int:
        return sum(f.size for f in self.files)


class BackupSignature(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``backup.sig``: the Ed25519 signature over ``SIGNING_CONTEXT + backup.json`` and the key that made it."""

    keyid: Sha256Hex
    public: Sha256Hex  # the raw 32-byte public key in hex; trusted only when it matches the operator's or box's key
    sig: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{128}$")]


class _Header(msgspec.Struct, frozen=True):
    format: int


def canonical_bytes(value: msgspec.Struct) -> bytes:
    """The one byte string that is signed: compact JSON, keys sorted, every field present."""
    return msgspec.json.encode(value, order="sorted")


def check_payload_path(path: str) -> str:
    """A relative path of safe components (no ``..``, no absolute, no odd characters), or ``unsafe-path``."""
    parts = path.split("/")
    if not path or any(not _SAFE_PART.match(p) for p in parts):
        reject(Reason.UNSAFE_PATH, f"unsafe path in the backup: {path!r}", path=path)
    return path


def decode_info(data: bytes) -> BackupInfo:
    """Decode ``backup.json`` strictly: known format version first, then every field, canonical form, safe paths."""
    try:
        header = msgspec.json.decode(data, type=_Header)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reject(Reason.FORMAT, f"{INFO_NAME} is malformed: {exc}")
    if header.format != FORMAT_VERSION:
        reject(Reason.UNKNOWN_FORMAT, f"backup format version {header.format} is unknown (this release reads "
               f"version {FORMAT_VERSION})", format=header.format)  # fmt: skip
    try:
        info = msgspec.json.decode(data, type=BackupInfo, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reject(Reason.FORMAT, f"{INFO_NAME} is malformed: {exc}")
    if canonical_bytes(info) != data:
        reject(Reason.FORMAT, f"{INFO_NAME} is not in canonical form")
    seen: set[str] = set()
    for record in info.files:
        check_payload_path(record.path)
        if record.path in seen:
            reject(Reason.FORMAT, f"{INFO_NAME} lists {record.path} twice", path=record.path)
        seen.add(record.path)
    for table in info.tables:
        if table.file not in seen:
            reject(Reason.FORMAT, f"table {table.name} names a file that is not listed: {table.file}")
    return info


def decode_signature(data: bytes) -> BackupSignature:
    try:
        return msgspec.json.decode(data, type=BackupSignature, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        reject(Reason.FORMAT, f"{SIGNATURE_NAME} is malformed: {exc}")
