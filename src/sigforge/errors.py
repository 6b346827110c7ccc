"""The DomainError tree.

Every error a user can cause, or that the box can detect about its own state, is one of these. They carry a
human message, an optional *location* (line/column in submitted source, or a settings key / JSON path) and
optional structured *detail*. They know nothing of HTTP: ``sigforge.web.errors`` maps them to problem details
and the CLI maps them to exit codes.

Untrusted-input errors (``InvalidInput`` and below) are distinct from faults of the box (``IntegrityError``,
``ToolchainError``) so that callers can tell "fix your request" from "fix the appliance".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """Where in a submitted source a problem sits: 1-based line, 0-based column counted in characters.

    Characters, not the UTF-8 bytes of ``ast.col_offset``: that is what editors and ``SyntaxError`` count.
    """

    line: int
    column: int
    end_line: int | None = None
    end_column: int | None = None

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}"

    def as_dict(self) -> dict[str, int]:
        out = {"line": self.line, "column": self.column}
        if self.end_line is not None:
            out["end_line"] = self.end_line
        if self.end_column is not None:
            out["end_column"] = self.end_column
        return out


class DomainError(Exception):
    """Base of every error sigforge raises on purpose."""

    code = "error"

    def __init__(
        self,
        message: str,
        *,
        location: SourceLocation | None = None,
        pointer: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.location = location
        self.pointer = pointer
        self.detail = detail or {}

    def __str__(self) -> str:
        where = f" ({self.location})" if self.location else (f" (at {self.pointer})" if self.pointer else "")
        return f"{self.message}{where}"


class NotFound(DomainError):
    """The named thing does not exist."""

    code = "not-found"


class Conflict(DomainError):
    """The request clashes with the current state (e.g. the artifact is not ready yet)."""

    code = "conflict"


class InvalidInput(DomainError):
    """Untrusted input was refused; the message says what and where."""

    code = "invalid-input"


class InvalidAlgorithm(InvalidInput):
    """The submitted algorithm is malformed or uses something the translator does not support."""

    code = "invalid-algorithm"


class UnsupportedTarget(InvalidInput):
    """The requested target is unknown or cannot be built on this box."""

    code = "unsupported-target"


class Unauthenticated(DomainError):
    """The request carries no valid credentials (no token, an expired or revoked one, a wrong name or password).

    A failed login says the same thing whatever went wrong (unknown user, wrong password, disabled, locked), so it
    cannot be used to find out which user names exist.
    """

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller is known but may not do this (e.g. an engineer calling an admin action)."""

    code = "forbidden"


class PasswordChangeRequired(Forbidden):
    """The caller signed in with a one-time password and must choose a new one before doing anything else."""

    code = "password-change-required"


class InvalidSettings(DomainError):
    """A setting has the wrong type or value; the message names the key and what was expected."""

    code = "invalid-settings"


class SchemaMismatch(DomainError):
    """The database schema is not the one this code was written for (newer, unknown or not migrated)."""

    code = "schema-mismatch"


class IntegrityError(DomainError):
    """Stored or installed data does not match what was recorded or signed."""

    code = "integrity"


class ToolchainError(DomainError):
    """A compiler, emulator or simulator is missing, failed to start, or misbehaved."""

    code = "toolchain"


class ToolchainMissing(ToolchainError):
    """No verified toolchain for the target is installed on this node (the message names the bundle to import)."""

    code = "toolchain-missing"


class ToolchainIntegrityError(IntegrityError):
    """A toolchain's files differ from its signed manifest: it is quarantined and nothing was built with it."""

    code = "toolchain-integrity"


class SandboxError(ToolchainError):
    """A sandboxed process could not be started with the required isolation."""

    code = "sandbox"


class BundleRejected(DomainError):
    """A signed bundle (or trust metadata) failed verification; ``reason`` names the failed check precisely.

    Reasons are short kebab-case codes (``signature-threshold``, ``file-hash-mismatch``, ``path-traversal``,
    ``expired``, ``rollback``…; the full list is ``sigforge.bundles.reasons.Reason``). Nothing was installed.
    """

    code = "bundle-rejected"

    def __init__(self, reason: str, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message, detail={"reason": str(reason), **(detail or {})})
        self.reason = str(reason)

    def __str__(self) -> str:
        return f"[{self.reason}] {self.message}"


class TrustRootRejected(BundleRejected):
    """New trust-root metadata was refused (bad signatures, version not increasing, malformed, expired)."""

    code = "trust-root-rejected"


class ServiceUnavailable(DomainError):
    """A dependency (database, broker) cannot be reached right now."""

    code = "unavailable"


class BackupRejected(DomainError):
    """A backup archive failed verification or cannot be restored here; ``reason`` names the failed check.

    Reasons are short kebab-case codes (``bad-signature``, ``file-changed``, ``file-missing``, ``file-extra``,
    ``version-mismatch``…; the full list is ``sigforge.backup.format.Reason``). Nothing was restored.
    """

    code = "backup-rejected"

    def __init__(self, reason: str, message: str, *, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message, detail={"reason": str(reason), **(detail or {})})
        self.reason = str(reason)

    def __str__(self) -> str:
        return f"[{self.reason}] {self.message}"
