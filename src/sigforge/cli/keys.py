"""``sigforge keys generate|rotate|show|install``: signing keys (build host) and the trust root (build host and box).

- ``generate`` writes one Ed25519 key pair for a role (private key 0600) and prints its key id.
- ``rotate`` writes new signed root metadata: version 1 when there is no ``--current``, else the next version,
  checked locally exactly as the box will check it (both the current and the new root thresholds must sign).
- ``show`` prints the installed trust root (or a root file) and its fingerprint, for comparison with a printed one.
- ``install`` installs a root on the box: the first one only with ``--fingerprint``, later ones only as a valid
  rotation. The file is copied to a private local file first and only that copy is read.
"""

from __future__ import annotations

import argparse
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from sigforge.bundles.keys import SigningKey, load_public_key, load_signing_key, write_key_pair
from sigforge.bundles.state import STATE_FILE, atomic_write, load_state
from sigforge.bundles.store import install_root, load_root, read_root_file
from sigforge.bundles.trust import (
    ROLES,
    RoleName,
    SignedRoot,
    check_rotation,
    encode_root,
    fingerprint,
    make_root_metadata,
    sign_root,
    verify_initial_root,
)
from sigforge.bundles.verify import local_copy
from sigforge.errors import InvalidInput
from sigforge.settings import Settings

EXIT_OK = 0


def parse_time(text: str) -> datetime:
    """An ISO 8601 date or date-time; without a zone it is UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"not an ISO 8601 date or time: {text!r} (e.g. 2027-01-31 or 2027-01-31T12:00:00Z)"
        ) from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="signing keys and the trust root: generate, rotate, show, install")
    ks = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    gen = ks.add_parser("generate", help="write a new Ed25519 key pair for a role (on the build host)")
    gen.add_argument("--role", required=True, choices=ROLES)
    gen.add_argument("--out", required=True, metavar="DIR", help="directory for ROLE-KEYID.key (0600) and .pub")
    rot = ks.add_parser("rotate", help="write new signed root metadata (the first one, or the next version)")
    rot.add_argument("--out", required=True, metavar="FILE")
    rot.add_argument("--current", metavar="FILE", help="the root now installed (omit for the first root)")
    rot.add_argument("--expires", required=True, metavar="DATE")
    for role in ROLES:
        rot.add_argument(f"--{role}-key", action="append", default=[], metavar="PUBFILE", dest=f"{role}_keys")
        rot.add_argument(f"--{role}-threshold", type=int, default=1, metavar="N", dest=f"{role}_threshold")
    rot.add_argument("--sign", action="append", required=True, metavar="KEYFILE",
                     help="private root key to sign with (current and new root keys; repeat)")  # fmt: skip
    show = ks.add_parser("show", help="print the installed trust root (or FILE) and its fingerprint")
    show.add_argument("file", nargs="?", metavar="FILE")
    show.add_argument("--trust", metavar="DIR", help="trust directory (default: bundles.trust_dir)")
    inst = ks.add_parser("install", help="install a trust root on this box (first install or rotation)")
    inst.add_argument("file", metavar="FILE")
    inst.add_argument("--trust", metavar="DIR", help="trust directory (default: bundles.trust_dir)")
    inst.add_argument("--fingerprint", metavar="HEX", help="required for the first root: the printed fingerprint")


def _describe(root: SignedRoot) -> str:
    meta = root.signed
    lines = [f"trust root version {meta.version}, expires {meta.expires.isoformat()}"]
    for role in ROLES:
        spec = meta.roles[role]
        lines.append(f"  {role:<9} {spec.threshold} of {len(spec.keyids)}: {', '.join(k[:16] for k in spec.keyids)}")
    lines.append(f"fingerprint: {fingerprint(root)}")
    return "\n".join(lines)


def _rotate(args: argparse.Namespace) -> int:
    current = read_root_file(Path(args.current)) if args.current else None
    role_keys = {role: [load_public_key(Path(p)) for p in getattr(args, f"{role}_keys")] for role in ROLES}
    missing = [role for role in ROLES if not role_keys[role]]
    if missing:
        raise InvalidInput(f"every role needs at least one key: give --{missing[0]}-key")
    thresholds: dict[RoleName, int] = {role: getattr(args, f"{role}_threshold") for role in ROLES}
    meta = make_root_metadata(
        version=current.signed.version + 1 if current else 1,
        expires=parse_time(args.expires),
        role_keys_=role_keys,
        thresholds=thresholds,
    )
    signers: list[SigningKey] = [load_signing_key(Path(p)) for p in args.sign]
    new = sign_root(meta, signers)
    now = datetime.now(UTC)
    if current is not None:
        check_rotation(current, new, now)
    else:
        verify_initial_root(new, fingerprint(new), now)
    atomic_write(Path(args.out), encode_root(new))
    print(_describe(new))
    return EXIT_OK


def run_keys(args: argparse.Namespace, settings: Settings) -> int:
    action = args.keys_command
    if action == "generate":
        key = SigningKey.generate()
        private, public = write_key_pair(key, Path(args.out), f"{args.role}-{key.keyid[:16]}")
        print(f"{args.role} key {key.keyid}\n  private: {private} (keep it off the box)\n  public:  {public}")
        return EXIT_OK
    if action == "rotate":
        return _rotate(args)
    trust_dir = Path(args.trust) if getattr(args, "trust", None) else settings.trust_path
    if action == "show":
        root = read_root_file(Path(args.file)) if args.file else load_root(trust_dir)
        print(_describe(root))
        return EXIT_OK
    with local_copy(Path(args.file), settings.bundles, workdir=Path(tempfile.gettempdir())) as copy:
        root = read_root_file(copy)
        first = install_root(trust_dir, root, datetime.now(UTC), args.fingerprint)
    state = load_state(trust_dir / STATE_FILE)
    print(f"{'installed' if first else 'rotated to'} {_describe(root)}\n(time floor {state.time_floor.isoformat()})")
    return EXIT_OK
