"""The box's trust directory: ``root.json`` (the installed trust root) and ``state.json`` (``state.TrustState``).

Reading fails closed: no root means nothing is trusted (``NotFound``), a root that is damaged or no longer carries
its own root threshold is an ``IntegrityError``. Installing a root goes through ``trust.verify_initial_root`` (first
root: the operator's fingerprint) or ``trust.check_rotation`` (every later one), then one atomic write.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sigforge.bundles.state import STATE_FILE, TrustState, atomic_write, load_state
from sigforge.bundles.trust import (
    SignedRoot,
    check_rotation,
    decode_root,
    encode_root,
    verify_initial_root,
    verify_installed_root,
)
from sigforge.errors import BundleRejected, IntegrityError, InvalidInput, NotFound

ROOT_FILE = "root.json"


def load_root(trust_dir: Path) -> SignedRoot:
    """The installed trust root.

    Raises:
        NotFound: none is installed.
        IntegrityError: the file is unreadable, malformed or not signed by its own root threshold.
    """
    path = trust_dir / ROOT_FILE
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"no trust root is installed in {trust_dir}: install one with `sigforge keys install`") from None
    except OSError as exc:
        raise IntegrityError(f"cannot read the trust root {path}: {exc.strerror}") from exc
    try:
        root = decode_root(data)
        verify_installed_root(root)
    except BundleRejected as exc:
        raise IntegrityError(f"the installed trust root {path} is damaged: {exc}") from exc
    return root


def load_trust(trust_dir: Path) -> tuple[SignedRoot, TrustState]:
    """The installed root and the persisted state (see ``load_root`` and ``state.load_state``)."""
    return load_root(trust_dir), load_state(trust_dir / STATE_FILE)


def read_root_file(path: Path) -> SignedRoot:
    """Decode root metadata from a (local) file.

    Raises:
        InvalidInput: unreadable. TrustRootRejected: malformed.
    """
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc
    return decode_root(data)


def install_root(trust_dir: Path, new: SignedRoot, now: datetime, expected_fingerprint: str | None = None) -> bool:
    """Install ``new`` as the trust root; return True for a first install, False for a rotation.

    Raises:
        InvalidInput: a first install without the expected fingerprint.
        TrustRootRejected: the checks of ``verify_initial_root`` or ``check_rotation`` failed; nothing changed.
    """
    state = load_state(trust_dir / STATE_FILE)
    effective = state.effective_now(now)
    try:
        current: SignedRoot | None = load_root(trust_dir)
    except NotFound:
        current = None
    if current is None:
        if not expected_fingerprint:
            raise InvalidInput("no trust root is installed: a first root needs --fingerprint, given out of band")
        verify_initial_root(new, expected_fingerprint, effective)
    else:
        check_rotation(current, new, effective)
    trust_dir.mkdir(parents=True, exist_ok=True, mode=0o755)
    atomic_write(trust_dir / ROOT_FILE, encode_root(new))
    return current is None
