"""The box's trust root (TUF-style root metadata) and the signature-threshold rule, as a pure state machine.

The spec, in order:
1. Root metadata lists public keys by key id (SHA-256 of the raw key) and three roles, ``root``, ``release`` and
   ``toolchain``, each a set of key ids and a threshold (1 <= threshold <= number of keys).
2. A signature counts only when it is by a key the role lists and it verifies over ``context + canonical bytes``.
   Each key counts once however often it signed; signatures by keys the role does not list are ignored and never
   counted; a signature by a listed key that does not verify rejects the whole document (``bad-signature``).
3. The first root is installed only when its fingerprint (``fingerprint``) equals the one the operator was given out of
   band, and it must be signed by its own root threshold.
4. A new root replaces the installed one only when its version is greater, it has not expired, and it is signed by
   the root threshold of the installed root **and** the root threshold of the new root.
5. Which role signs which bundle kind: ``toolchain`` -> toolchain; ``release`` and ``media`` -> release.
6. An expired installed root trusts nothing (``root-expired``): rotate it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Literal, NoReturn

import msgspec

from sigforge.bundles.keys import ROOT_CONTEXT, PublicKey, SigningKey, keyid_of
from sigforge.bundles.manifest import Kind, Sha256Hex, UtcTime, canonical_bytes
from sigforge.bundles.reasons import Reason, reject, reject_root

RoleName = Literal["root", "release", "toolchain"]
ROLES: tuple[RoleName, ...] = ("root", "release", "toolchain")
ROLE_FOR_KIND: Mapping[Kind, RoleName] = {"toolchain": "toolchain", "release": "release", "media": "release"}
ROOT_TYPE = "sigforge-root"
SigHex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{128}$")]


class KeySpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A public key as trust metadata carries it."""

    keytype: Literal["ed25519"] = "ed25519"
    public: Sha256Hex  # 32 raw bytes as 64 hex digits


class RoleSpec(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    keyids: Annotated[tuple[Sha256Hex, ...], msgspec.Meta(min_length=1)]
    threshold: Annotated[int, msgspec.Meta(ge=1)]


class RootMetadata(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The signed part of the trust root."""

    type: Literal["sigforge-root"] = "sigforge-root"
    schema: Literal[1] = 1
    version: Annotated[int, msgspec.Meta(ge=1)]
    expires: UtcTime
    keys: dict[Sha256Hex, KeySpec]
    roles: dict[RoleName, RoleSpec]


class Signature(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    keyid: Sha256Hex
    sig: SigHex


class SignedRoot(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    signed: RootMetadata
    signatures: tuple[Signature, ...]


Rejecter = Callable[..., NoReturn]


def role_keys(root: RootMetadata, role: RoleName) -> dict[str, PublicKey]:
    """The public keys the role lists, by key id."""
    return {kid: PublicKey(bytes.fromhex(root.keys[kid].public)) for kid in root.roles[role].keyids}


def count_valid(
    payload: bytes,
    signatures: Sequence[Signature],
    keys: Mapping[str, PublicKey],
    threshold: int,
    *,
    context: bytes,
    what: str,
    fail: Rejecter = reject,
) -> frozenset[str]:
    """The distinct key ids whose signatures verify; rejects when fewer than ``threshold`` (see rule 2)."""
    valid: set[str] = set()
    unknown = 0
    for signature in signatures:
        key = keys.get(signature.keyid)
        if key is None:
            unknown += 1
            continue
        if not key.verify(bytes.fromhex(signature.sig), payload, context):
            fail(Reason.BAD_SIGNATURE, f"{what}: the signature by key {signature.keyid[:16]} does not match")
        valid.add(signature.keyid)
    if len(valid) < threshold:
        if not valid and unknown:
            fail(Reason.UNKNOWN_KEY, f"{what}: signed only by keys this box does not trust for it ({unknown})")
        fail(
            Reason.SIGNATURE_THRESHOLD,
            f"{what}: {len(valid)} distinct trusted signature(s), {threshold} required",
            valid=len(valid),
            threshold=threshold,
        )
    return frozenset(valid)


def decode_root(data: bytes) -> SignedRoot:
    """Strictly decode root metadata and check its internal consistency (not its signatures).

    Raises:
        TrustRootRejected: ``root-invalid``.
    """
    try:
        root = msgspec.json.decode(data, type=SignedRoot, strict=True)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
        reject_root(Reason.ROOT_INVALID, f"not valid root metadata: {exc}")
    meta = root.signed
    for kid, spec in meta.keys.items():
        if keyid_of(bytes.fromhex(spec.public)) != kid:
            reject_root(Reason.ROOT_INVALID, f"key id {kid[:16]} is not the SHA-256 of its public key")
    for role in ROLES:
        spec_ = meta.roles.get(role)
        if spec_ is None:
            reject_root(Reason.ROOT_INVALID, f"the root lacks the {role!r} role")
        if len(set(spec_.keyids)) != len(spec_.keyids) or any(k not in meta.keys for k in spec_.keyids):
            reject_root(Reason.ROOT_INVALID, f"role {role!r} lists a key twice or a key the root does not define")
        if spec_.threshold > len(spec_.keyids):
            reject_root(Reason.ROOT_INVALID, f"role {role!r} needs {spec_.threshold} of {len(spec_.keyids)} keys")
    return root


def encode_root(root: SignedRoot) -> bytes:
    return canonical_bytes(root)


def fingerprint(root: SignedRoot) -> str:
    """SHA-256 of the canonical signed root metadata, in groups of four hex digits (what an operator compares)."""
    digest = hashlib.sha256(canonical_bytes(root.signed)).hexdigest().upper()
    return " ".join(digest[i : i + 4] for i in range(0, len(digest), 4))


def _root_signers(root: SignedRoot, by: RootMetadata, label: str) -> frozenset[str]:
    return count_valid(
        canonical_bytes(root.signed),
        root.signatures,
        role_keys(by, "root"),
        by.roles["root"].threshold,
        context=ROOT_CONTEXT,
        what=f"root v{root.signed.version} ({label} root keys)",
        fail=reject_root,
    )


def check_not_expired(root: SignedRoot, effective_now: datetime) -> None:
    if root.signed.expires <= effective_now:
        reject_root(Reason.ROOT_EXPIRED, f"root v{root.signed.version} expired at {root.signed.expires.isoformat()}")


def verify_initial_root(root: SignedRoot, expected_fingerprint: str, effective_now: datetime) -> None:
    """Rule 3: a first root is trusted only by its out-of-band fingerprint and its own root threshold."""
    given = "".join(expected_fingerprint.split()).upper()
    if given != "".join(fingerprint(root).split()):
        reject_root(Reason.ROOT_INVALID, "the root's fingerprint is not the one given")
    check_not_expired(root, effective_now)
    _root_signers(root, root.signed, "its own")


def verify_installed_root(root: SignedRoot) -> None:
    """An installed root must still carry its own root threshold (catches edits on disk)."""
    _root_signers(root, root.signed, "its own")


def check_rotation(current: SignedRoot, new: SignedRoot, effective_now: datetime) -> None:
    """Rule 4: the version goes up, and both the current and the new root thresholds signed the new root.

    Raises:
        TrustRootRejected: ``root-version``, ``root-expired``, ``signature-threshold``, ``bad-signature``,
            ``unknown-key``.
    """
    if new.signed.version <= current.signed.version:
        reject_root(
            Reason.ROOT_VERSION,
            f"new root version {new.signed.version} is not greater than the installed {current.signed.version}",
        )
    check_not_expired(new, effective_now)
    _root_signers(new, current.signed, "current")
    _root_signers(new, new.signed, "new")


def make_root_metadata(
    *,
    version: int,
    expires: datetime,
    role_keys_: Mapping[RoleName, Sequence[PublicKey]],
    thresholds: Mapping[RoleName, int],
) -> RootMetadata:
    """Root metadata naming ``role_keys_[role]`` with ``thresholds[role]`` for each of the three roles.

    Raises:
        TrustRootRejected: ``root-invalid`` (a role missing, a threshold out of range).
    """
    keys: dict[str, KeySpec] = {}
    roles: dict[RoleName, RoleSpec] = {}
    for role in ROLES:
        publics = role_keys_.get(role) or ()
        for public in publics:
            keys[public.keyid] = KeySpec(public=public.raw.hex())
        ids = tuple(sorted({p.keyid for p in publics}))
        try:
            roles[role] = msgspec.convert({"keyids": ids, "threshold": thresholds.get(role, 1)}, RoleSpec)
        except msgspec.ValidationError as exc:
            reject_root(Reason.ROOT_INVALID, f"role {role!r}: {exc}")
    meta = RootMetadata(version=version, expires=expires.replace(microsecond=0), keys=keys, roles=roles)
    decode_root(encode_root(SignedRoot(signed=meta, signatures=())))  # the same consistency rules as on the box
    return meta


def sign_root(meta: RootMetadata, signers: Sequence[SigningKey]) -> SignedRoot:
    """``meta`` signed by each distinct key of ``signers`` (sorted by key id)."""
    payload = canonical_bytes(meta)
    unique = {key.keyid: key for key in signers}
    sigs = tuple(Signature(keyid=k, sig=unique[k].sign(payload, ROOT_CONTEXT).hex()) for k in sorted(unique))
    return SignedRoot(signed=meta, signatures=sigs)
