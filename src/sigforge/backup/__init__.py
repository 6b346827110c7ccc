"""Backups of one box: the signed, checksummed archive format and its verification. Pure: it is handed file paths and
bytes, never a database (the dump is ``sigforge.db.dump``; the orchestration is ``sigforge.services.backup``).
See docs/backup.md.
"""

from sigforge.backup.archive import VerifiedBackup, read_archive, sha256_file, write_archive
from sigforge.backup.format import (
    FORMAT_VERSION,
    BackupInfo,
    ColumnRecord,
    FileRecord,
    Reason,
    TableRecord,
    ToolchainNote,
    canonical_bytes,
)
from sigforge.backup.signing import TrustedKey, box_public_key, load_or_create_box_key, sign, verify_signature

__all__ = [
    "FORMAT_VERSION",
    "BackupInfo",
    "ColumnRecord",
    "FileRecord",
    "Reason",
    "TableRecord",
    "ToolchainNote",
    "TrustedKey",
    "VerifiedBackup",
    "box_public_key",
    "canonical_bytes",
    "load_or_create_box_key",
    "read_archive",
    "sha256_file",
    "sign",
    "verify_signature",
    "write_archive",
]
