"""Every reason a bundle or trust metadata can be rejected: one code per check, stable (tests and operators rely on it).

``reject(reason, message)`` builds the ``BundleRejected`` that verification raises; nothing is ever skipped.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, NoReturn

from sigforge.errors import BundleRejected, TrustRootRejected


class Reason(StrEnum):
    """Why a bundle was refused."""

    ARCHIVE_TOO_LARGE = "archive-too-large"  # the bundle file exceeds bundles.max_archive_bytes
    ARCHIVE_FORMAT = "archive-format"  # not gzip/zstd, a non-canonical header, members out of order, trailing bytes
    TRUNCATED = "truncated"  # the compressed stream or the tar ends early
    DECOMPRESSION_BOMB = "decompression-bomb"  # unpacks beyond bundles.max_compression_ratio x archive size
    UNPACKED_TOO_LARGE = "unpacked-too-large"  # declared or actual content beyond bundles.max_unpacked_bytes
    TOO_MANY_FILES = "too-many-files"  # more entries than bundles.max_files
    MANIFEST_INVALID = "manifest-invalid"  # not a valid manifest (types, fields, schema version, values)
    SIGNATURES_INVALID = "signatures-invalid"  # signatures.json malformed
    UNKNOWN_KEY = "unknown-key"  # only signatures by keys the trust root does not list for the role
    BAD_SIGNATURE = "bad-signature"  # a trusted key's signature does not match the manifest (edited after signing)
    SIGNATURE_THRESHOLD = "signature-threshold"  # fewer distinct trusted keys than the role's threshold
    OWN_TRUST = "own-trust"  # the bundle carries keys or root metadata of its own
    ROOT_EXPIRED = "root-expired"  # the installed trust root itself has expired
    EXPIRED = "expired"  # the manifest's expiry is at or before max(clock, persisted floor)
    ROLLBACK = "rollback"  # not newer than the installed version or the last version seen
    MIN_INSTALLED_VERSION = "min-installed-version"  # the box is older than the bundle's minimum installed version
    WRONG_KIND = "wrong-kind"
    WRONG_PRODUCT = "wrong-product"
    WRONG_ARCHITECTURE = "wrong-architecture"
    PATH_TRAVERSAL = "path-traversal"  # an absolute path, a `..`, an empty or `.` component, a path through a link
    LINK_OUTSIDE = "link-outside"  # a declared symbolic link whose target leaves the bundle
    LINK_NOT_ALLOWED = "link-not-allowed"  # a hard link, or a symbolic link the manifest does not declare as such
    SPECIAL_FILE = "special-file"  # a device, FIFO or directory member
    DUPLICATE_ENTRY = "duplicate-entry"  # the same path twice (in the manifest or in the archive)
    EXTRA_FILE = "extra-file"  # an archive member the manifest does not list
    MISSING_FILE = "missing-file"  # a manifest entry with no archive member
    SIZE_MISMATCH = "size-mismatch"
    FILE_HASH_MISMATCH = "file-hash-mismatch"
    BAD_MODE = "bad-mode"  # a mode other than plain permission bits, or group/world-writable
    MEMBER_METADATA = "member-metadata"  # a tar header field differs from the canonical form (owner, mtime, mode…)
    ROOT_INVALID = "root-invalid"  # trust-root metadata malformed or inconsistent
    ROOT_VERSION = "root-version"  # a new trust root whose version does not go up


def reject(reason: Reason, message: str, **detail: Any) -> NoReturn:
    """Raise ``BundleRejected`` for ``reason``."""
    raise BundleRejected(reason, message, detail=detail or None)


def reject_root(reason: Reason, message: str, **detail: Any) -> NoReturn:
    """Raise ``TrustRootRejected`` for ``reason``."""
    raise TrustRootRejected(reason, message, detail=detail or None)
