"""Ed25519 key pairs: key ids, signing, verification and the key file formats.

- A key id is the lower-case hex SHA-256 of the 32-byte raw public key.
- Private keys are PKCS#8 PEM files written with mode 0600 (and refused when group- or world-readable); public keys
  are SubjectPublicKeyInfo PEM files. In trust metadata a public key travels as its raw bytes in hex.
- Every signature is over ``context + payload``: the context names what is signed (a manifest, a root), so a
  signature made for one can never be replayed as the other.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from sigforge.errors import InvalidInput

MANIFEST_CONTEXT = b"sigforge bundle manifest v1\n"
ROOT_CONTEXT = b"sigforge trust root v1\n"
PRIVATE_SUFFIX, PUBLIC_SUFFIX = ".key", ".pub"
_RAW = serialization.Encoding.Raw, serialization.PublicFormat.Raw


def keyid_of(public_raw: bytes) -> str:
    """The key id: SHA-256 of the raw 32-byte public key, lower-case hex."""
    return hashlib.sha256(public_raw).hexdigest()


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A verifying key."""

    raw: bytes

    @property
    def keyid(self) -> str:
        return keyid_of(self.raw)

    def verify(self, signature: bytes, payload: bytes, context: bytes) -> bool:
        """True when ``signature`` is this key's Ed25519 signature over ``context + payload``."""
        try:
            Ed25519PublicKey.from_public_bytes(self.raw).verify(signature, context + payload)
        except (InvalidSignature, ValueError):
            return False
        return True

    def pem(self) -> bytes:
        key = Ed25519PublicKey.from_public_bytes(self.raw)
        return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key (kept on the connected build host, never on the box)."""

    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(Ed25519PrivateKey.generate())

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.private.public_key().public_bytes(*_RAW))

    @property
    def keyid(self) -> str:
        return self.public.keyid

    def sign(self, payload: bytes, context: bytes) -> bytes:
        return self.private.sign(context + payload)

    def pem(self) -> bytes:
        return self.private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def write_key_pair(key: SigningKey, directory: Path, stem: str) -> tuple[Path, Path]:
    """Write ``stem.key`` (0600, refusing to overwrite) and ``stem.pub``; return both paths."""
    directory.mkdir(parents=True, exist_ok=True)
    private_path, public_path = directory / f"{stem}{PRIVATE_SUFFIX}", directory / f"{stem}{PUBLIC_SUFFIX}"
    for path in (private_path, public_path):
        if path.exists():
            raise InvalidInput(f"{path} already exists; keys are never overwritten")
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.pem())
        fh.flush()
        os.fsync(fh.fileno())
    public_path.write_bytes(key.public.pem())
    return private_path, public_path


def load_signing_key(path: Path) -> SigningKey:
    """Read a private key file.

    Raises:
        InvalidInput: unreadable, not an Ed25519 PKCS#8 PEM key, or readable by group/others.
    """
    try:
        mode = path.stat().st_mode
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read key file {path}: {exc.strerror}") from exc
    if mode & 0o077:
        raise InvalidInput(f"private key {path} is readable by others (mode {mode & 0o777:o}); chmod 600 it")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path} is not an unencrypted PEM private key") from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{path} is not an Ed25519 key")
    return SigningKey(key)


def load_public_key(path: Path) -> PublicKey:
    """Read a public key file (PEM, or a private key file, whose public half is taken).

    Raises:
        InvalidInput: unreadable or not an Ed25519 key.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read key file {path}: {exc.strerror}") from exc
    if b"PRIVATE KEY" in data:
        return load_signing_key(path).public
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InvalidInput(f"{path} is not a PEM public key") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise InvalidInput(f"{path} is not an Ed25519 key")
    return PublicKey(key.public_bytes(*_RAW))
