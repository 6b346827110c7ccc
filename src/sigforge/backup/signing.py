"""Signing backups with the box's own backup key, and checking a signature against a key the verifier trusts.

The box holds no release or toolchain private key, so a backup is signed with a per-box Ed25519 key generated on
first use (``<dir>/backup.key``, mode 0600, and ``backup.pub``). The key id (SHA-256 of the raw public key) is the
fingerprint the operator records off the box. ``backup.sig`` carries the public key, but it is never trusted by
itself: it must match the key the verifier names (a public key file, a fingerprint, or the box's own key).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sigforge.backup.format import BackupSignature, Reason, canonical_bytes, decode_signature, reject
from sigforge.bundles.keys import PublicKey, SigningKey, load_public_key, load_signing_key, write_key_pair

SIGNING_CONTEXT = b"sigforge backup v1\n"
KEY_STEM = "backup"


def box_key_paths(key_dir: Path) -> tuple[Path, Path]:
    return key_dir / f"{KEY_STEM}.key", key_dir / f"{KEY_STEM}.pub"


def load_or_create_box_key(key_dir: Path) -> tuple[SigningKey, bool]:
    """The box's backup key, generated (0600) when there is none yet; the flag says whether it was just made."""
    private, _ = box_key_paths(key_dir)
    if private.exists():
        return load_signing_key(private), False
    key = SigningKey.generate()
    key_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_key_pair(key, key_dir, KEY_STEM)
    return key, True


def box_public_key(key_dir: Path) -> PublicKey | None:
    """The box's own backup public key, or None when this box has never made a backup."""
    _, public = box_key_paths(key_dir)
    return load_public_key(public) if public.exists() else None


def sign(info_bytes: bytes, key: SigningKey) -> bytes:
    """``backup.sig`` for ``backup.json``'s bytes."""
    sig = BackupSignature(keyid=key.keyid, public=key.public.raw.hex(), sig=key.sign(info_bytes, SIGNING_CONTEXT).hex())
    return canonical_bytes(sig)


@dataclass(frozen=True, slots=True)
class TrustedKey:
    """What the verifier trusts: a public key, or only a fingerprint (the key id) given out of band."""

    keyid: str
    public: PublicKey | None = None
    source: str = ""

    @classmethod
    def of(cls, key: PublicKey, source: str) -> TrustedKey:
        return cls(key.keyid, key, source)


def verify_signature(info_bytes: bytes, sig_bytes: bytes, trusted: TrustedKey | None) -> str:
    """Check ``backup.sig`` over ``backup.json``; return the signing key id.

    Raises:
        BackupRejected: ``untrusted-key`` (nothing to check against, or signed by another key), ``bad-signature``.
    """
    signature = decode_signature(sig_bytes)
    if trusted is None:
        reject(Reason.UNTRUSTED_KEY, "there is no key to check the backup's signature against: give the backup "
               f"public key (--key) or its fingerprint (--fingerprint); the archive says key {signature.keyid}",
               keyid=signature.keyid)  # fmt: skip
    embedded = PublicKey(bytes.fromhex(signature.public))
    if embedded.keyid != signature.keyid:
        reject(Reason.BAD_SIGNATURE, "backup.sig names a key id that is not its public key's", keyid=signature.keyid)
    if signature.keyid != trusted.keyid.lower():
        reject(Reason.UNTRUSTED_KEY, f"the backup is signed by key {signature.keyid}, not by the trusted key "
               f"{trusted.keyid}{f' ({trusted.source})' if trusted.source else ''}",
               keyid=signature.keyid, expected=trusted.keyid)  # fmt: skip
    key = trusted.public or embedded
    if not key.verify(bytes.fromhex(signature.sig), info_bytes, SIGNING_CONTEXT):
        reject(Reason.BAD_SIGNATURE, f"the signature over backup.json does not verify with key {signature.keyid}",
               keyid=signature.keyid)  # fmt: skip
    return signature.keyid
