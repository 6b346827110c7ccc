"""Password hashing and sign-in tokens: the standard library only, no database, no I/O.

Passwords are hashed with scrypt (``hashlib.scrypt``) and a 16-byte random salt; the parameters travel with the
hash, so they can be raised later without invalidating the stored ones::

    scrypt$<n>$<r>$<p>$<salt, base64>$<key, base64>

Verification fails closed: a hash that is not in this exact format, or whose parameters are outside the accepted
bounds (a tampered row must not make the box spend gigabytes), never matches. The comparison is constant-time.

Sign-in tokens are 32 random bytes (URL-safe base64, prefixed ``sft_``); only their SHA-256 is stored.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import secrets

SCHEME = "scrypt"
N, R, P = 2**14, 8, 1  # ~16 MiB and a few tens of milliseconds per hash
KEY_BYTES = 32
SALT_BYTES = 16
MAX_N = 2**20
MAX_R, MAX_P = 32, 16
MAXMEM = 256 * 1024**2
TOKEN_PREFIX = "sft_"  # noqa: S105 - a marker, not a secret
# One-time passwords: unambiguous characters (no 0/O, 1/l/I), 4 groups of 5 (about 100 bits).
OTP_ALPHABET = "abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
OTP_GROUPS, OTP_GROUP_LEN = 4, 5


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _scrypt(password: str, salt: bytes, *, n: int, r: int, p: int, length: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=length, maxmem=MAXMEM)


def hash_password(password: str, *, n: int = N, r: int = R, p: int = P) -> str:
    """A new salted scrypt hash of ``password``, with its parameters."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, n=n, r=r, p=p, length=KEY_BYTES)
    return f"{SCHEME}${n}${r}${p}${_b64(salt)}${_b64(key)}"


def _parse(stored: str) -> tuple[int, int, int, bytes, bytes] | None:
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != SCHEME:
        return None
    try:
        n, r, p = int(parts[1]), int(parts[2]), int(parts[3])
        salt = base64.b64decode(parts[4], validate=True)
        key = base64.b64decode(parts[5], validate=True)
    except (ValueError, binascii.Error):
        return None
    power_of_two = n > 1 and n & (n - 1) == 0
    if not (power_of_two and n <= MAX_N and 1 <= r <= MAX_R and 1 <= p <= MAX_P):
        return None
    if len(salt) < SALT_BYTES or not 16 <= len(key) <= 64:
        return None
    return n, r, p, salt, key


def verify_password(password: str, stored: str) -> bool:
    """Whether ``password`` matches ``stored``; False (never an error) for a malformed or out-of-bounds hash."""
    parsed = _parse(stored)
    if parsed is None:
        return False
    n, r, p, salt, key = parsed
    return hmac.compare_digest(_scrypt(password, salt, n=n, r=r, p=p, length=len(key)), key)


@functools.cache
def _dummy_hash() -> str:
    return hash_password(secrets.token_urlsafe(16))


def burn_time(password: str) -> None:
    """Spend what a real verification would, for an unknown user: a failed sign-in costs the same either way."""
    verify_password(password, _dummy_hash())


def needs_rehash(stored: str) -> bool:
    parsed = _parse(stored)
    return parsed is None or parsed[:3] != (N, R, P)


def one_time_password() -> str:
    groups = ("".join(secrets.choice(OTP_ALPHABET) for _ in range(OTP_GROUP_LEN)) for _ in range(OTP_GROUPS))
    return "-".join(groups)


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """What the database stores for ``token``: its SHA-256, hex."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
