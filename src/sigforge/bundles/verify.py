"""``verify_bundle``: every check a bundle must pass, in this order, failing closed at the first one that fails.

1. The local copy is at most ``bundles.max_archive_bytes``; it is canonical gzip or zstd; its first members are
   ``manifest.json`` (canonical bytes, strictly decoded) and ``signatures.json`` — trust material in either, or
   elsewhere in the archive, is ``own-trust``.
2. The installed trust root has not expired (against the effective time, step 5).
3. Signatures: the role for the manifest's kind (toolchain -> toolchain; release, media -> release) must reach its
   threshold in *distinct* trusted keys; unknown keys are ignored and never counted; a trusted key's signature that
   does not verify (the manifest was edited after signing) rejects.
4. The manifest's semantics (``manifest.validate_manifest``); then kind, product and architecture (``any`` fits all).
5. Expiry against ``max(now, persisted time floor)``: a clock set backwards cannot revive expired metadata.
6. Rollback: the version must be greater than the installed one (equal is allowed for a toolchain: re-importing the
   same signed toolchain, e.g. after a quarantine), and never below the highest version this box ever accepted of
   that kind and name (equal allowed: a retried update); ``min_installed_version`` requires the installed version.
7. Limits: entry count (``bundles.max_files``) and declared size (``bundles.max_unpacked_bytes``).
8. The payload, streamed: each member's path, type, header, size and SHA-256 against the manifest; no extra,
   duplicate or missing entries; the archive ends canonically.

``verify_bundle`` writes nothing. ``extract_verified`` re-reads the same local copy, re-checks every byte while
writing into a fresh private directory, and renames it into place. Callers copy from removable media first
(``local_copy``) and verify and use only that copy: no time-of-check/time-of-use gap.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import msgspec

from sigforge.bundles.archive import DirectorySink, PayloadSink, open_bundle, private_directory_beside
from sigforge.bundles.keys import MANIFEST_CONTEXT
from sigforge.bundles.manifest import ANY_ARCH, Kind, Manifest, decode_manifest, validate_manifest
from sigforge.bundles.reasons import Reason, reject
from sigforge.bundles.state import TrustState
from sigforge.bundles.trust import (
    ROLE_FOR_KIND,
    RoleName,
    Signature,
    SignedRoot,
    check_not_expired,
    count_valid,
    role_keys,
)
from sigforge.bundles.version import Version
from sigforge.errors import Conflict, InvalidInput
from sigforge.settings import BundleSettings

_TRUST_WORDS = ("key", "root", "trust", "role", "cert")


class Signatures(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """``signatures.json``: signatures over ``MANIFEST_CONTEXT + manifest bytes``; key ids only, never keys."""

    signatures: tuple[Signature, ...]


@dataclass(frozen=True, slots=True)
class VerifiedBundle:
    """A bundle that passed every check; ``path`` is the local copy that was verified (use only that copy)."""

    path: Path
    manifest: Manifest
    manifest_bytes: bytes
    signature_bytes: bytes
    role: RoleName
    signed_by: frozenset[str]


def decode_signatures(data: bytes) -> Signatures:
    try:
        return msgspec.json.decode(data, type=Signatures, strict=True)
    except msgspec.ValidationError as exc:
        if "unknown field" in str(exc) and any(w in str(exc).split("`")[1].lower() for w in _TRUST_WORDS):
            reject(Reason.OWN_TRUST, f"signatures.json carries trust material: {exc}")
        reject(Reason.SIGNATURES_INVALID, f"signatures.json is not valid: {exc}")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        reject(Reason.SIGNATURES_INVALID, f"signatures.json is not JSON: {exc}")


def check_header(
    manifest_bytes: bytes,
    signature_bytes: bytes,
    *,
    trust_root: SignedRoot,
    state: TrustState,
    now: datetime,
    expected_product: str,
    host_arch: str,
    installed_version: Version | None,
    limits: BundleSettings,
    expected_kind: Kind | None = None,
) -> tuple[Manifest, RoleName, frozenset[str]]:
    """Steps 1-7 of the module docstring on the header alone (pure)."""
    manifest = decode_manifest(manifest_bytes, validate=False)
    signatures = decode_signatures(signature_bytes)
    effective = state.effective_now(now)
    check_not_expired(trust_root, effective)
    role = ROLE_FOR_KIND[manifest.kind]
    meta = trust_root.signed
    signers = count_valid(
        manifest_bytes,
        signatures.signatures,
        role_keys(meta, role),
        meta.roles[role].threshold,
        context=MANIFEST_CONTEXT,
        what=f"{manifest.kind} bundle {manifest.name} {manifest.version} ({role} role)",
    )
    validate_manifest(manifest)
    if expected_kind is not None and manifest.kind != expected_kind:
        reject(Reason.WRONG_KIND, f"expected a {expected_kind} bundle, got a {manifest.kind} bundle")
    if manifest.product != expected_product:
        reject(Reason.WRONG_PRODUCT, f"the bundle is for {manifest.product!r}, this box is {expected_product!r}")
    if manifest.host_arch not in (ANY_ARCH, host_arch):
        reject(Reason.WRONG_ARCHITECTURE, f"the bundle is for {manifest.host_arch}, this box is {host_arch}")
    if manifest.expires <= effective:
        behind = f" (the clock, {now.isoformat()}, is behind the persisted floor)" if now < state.time_floor else ""
        reject(Reason.EXPIRED, f"the bundle expired at {manifest.expires.isoformat()}{behind}")
    _check_versions(manifest, state, installed_version)
    if len(manifest.files) + len(manifest.symlinks) > limits.max_files:
        reject(Reason.TOO_MANY_FILES, f"{len(manifest.files)} files; bundles.max_files allows {limits.max_files}")
    if manifest.total_size > limits.max_unpacked_bytes:
        reject(Reason.UNPACKED_TOO_LARGE, f"{manifest.total_size} bytes unpacked; bundles.max_unpacked_bytes "
               f"allows {limits.max_unpacked_bytes}")  # fmt: skip
    return manifest, role, signers


def _check_versions(manifest: Manifest, state: TrustState, installed: Version | None) -> None:
    version = manifest.parsed_version
    if installed is not None and (version < installed or (version == installed and manifest.kind != "toolchain")):
        reject(Reason.ROLLBACK, f"{manifest.name} {version} is not newer than the installed {installed}")
    seen = state.last_seen(manifest.kind, manifest.name)
    if seen is not None and version < seen:
        reject(Reason.ROLLBACK, f"{manifest.name} {version} is older than {seen}, which this box already accepted")
    if manifest.min_installed_version is not None:
        minimum = Version.parse(manifest.min_installed_version)
        if installed is None or installed < minimum:
            reject(Reason.MIN_INSTALLED_VERSION, f"needs {minimum} or later installed first (installed: {installed})")


def peek_manifest(path: Path, limits: BundleSettings) -> Manifest:
    """The manifest of the bundle at ``path``, decoded but NOT verified: only to learn which installed thing (name,
    kind) a bundle claims to replace, so that ``verify_bundle`` can be given the installed version. Never trust it.

    Raises:
        BundleRejected: the archive or the manifest cannot be read at all.
    """
    with open_bundle(path, limits) as reader:
        manifest_bytes, _ = reader.read_header()
    return decode_manifest(manifest_bytes, validate=False)


def verify_stored_manifest(manifest_bytes: bytes, signature_bytes: bytes, trust_root: SignedRoot) -> Manifest:
    """Re-check a manifest kept after import (e.g. in a database row) against the installed trust root.

    Signatures (role threshold, distinct trusted keys) and the manifest's own rules only: expiry and rollback
    govern whether a bundle may be *imported*, not whether an imported one may still be used.

    Raises:
        BundleRejected: the stored manifest or its signatures no longer verify.
    """
    manifest = decode_manifest(manifest_bytes, validate=False)
    role = ROLE_FOR_KIND[manifest.kind]
    count_valid(
        manifest_bytes,
        decode_signatures(signature_bytes).signatures,
        role_keys(trust_root.signed, role),
        trust_root.signed.roles[role].threshold,
        context=MANIFEST_CONTEXT,
        what=f"stored {manifest.kind} manifest {manifest.name} {manifest.version}",
    )
    validate_manifest(manifest)
    return manifest


def verify_bundle(
    path: Path,
    *,
    trust_root: SignedRoot,
    state: TrustState,
    now: datetime,
    expected_product: str,
    host_arch: str,
    installed_version: Version | None,
    limits: BundleSettings,
    expected_kind: Kind | None = None,
) -> VerifiedBundle:
    """Run every check on the local bundle file at ``path``; write nothing.

    Raises:
        BundleRejected: with the reason of the first check that failed.
    """
    with open_bundle(path, limits) as reader:
        manifest_bytes, signature_bytes = reader.read_header()
        manifest, role, signers = check_header(
            manifest_bytes,
            signature_bytes,
            trust_root=trust_root,
            state=state,
            now=now,
            expected_product=expected_product,
            host_arch=host_arch,
            installed_version=installed_version,
            limits=limits,
            expected_kind=expected_kind,
        )
        reader.read_payload(manifest, PayloadSink())
    return VerifiedBundle(path=path, manifest=manifest, manifest_bytes=manifest_bytes,
                          signature_bytes=signature_bytes, role=role, signed_by=signers)  # fmt: skip


def extract_verified(verified: VerifiedBundle, dest: Path, limits: BundleSettings) -> Path:
    """Unpack a verified bundle's payload into the new directory ``dest`` (which must not exist), atomically.

    Every byte is checked again while it is written; on any failure nothing appears at ``dest``.

    Raises:
        Conflict: ``dest`` exists already.
        BundleRejected: the local copy no longer matches what was verified.
    """
    if dest.exists() or dest.is_symlink():
        raise Conflict(f"{dest} exists already; a bundle is unpacked only into a new directory")
    with private_directory_beside(dest) as tmp, open_bundle(verified.path, limits) as reader:
        manifest_bytes, _ = reader.read_header()
        if manifest_bytes != verified.manifest_bytes:
            reject(Reason.ARCHIVE_FORMAT, "the local copy changed after it was verified")
        reader.read_payload(verified.manifest, DirectorySink(tmp))
        tmp.chmod(0o755)
        # Everything unpacked reaches the disk before the rename makes it visible: one sync() for the whole tree
        # instead of an fsync per file (a toolchain has thousands of files; per-file fsync cost 1 s per 1,800).
        os.sync()
        if dest.exists() or dest.is_symlink():
            raise Conflict(f"{dest} appeared while the bundle was being unpacked")
        tmp.rename(dest)
    return dest


@contextmanager
def local_copy(source: Path, limits: BundleSettings, workdir: Path | None = None) -> Iterator[Path]:
    """Copy ``source`` (e.g. on removable media) into a private 0700 directory; yield the copy; remove it after.

    Raises:
        InvalidInput: the source cannot be read.
        BundleRejected: ``archive-too-large`` (checked while copying, so a huge file is never copied whole).
    """
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=workdir, prefix="sigforge-bundle-"))
    try:
        copy = tmp / "bundle"
        try:
            src = source.open("rb")
        except OSError as exc:
            raise InvalidInput(f"cannot read {source}: {exc.strerror}") from exc
        with src, copy.open("xb") as dst:
            copied = 0
            while chunk := src.read(1024**2):
                copied += len(chunk)
                if copied > limits.max_archive_bytes:
                    reject(Reason.ARCHIVE_TOO_LARGE, f"{source} is larger than bundles.max_archive_bytes "
                           f"({limits.max_archive_bytes})")  # fmt: skip
                dst.write(chunk)
            dst.flush()
            os.fsync(dst.fileno())
        copy.chmod(0o400)
        yield copy
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
