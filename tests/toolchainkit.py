"""Small signed toolchains for tests: a shell script as ``cc``, signed with per-test keys, and the development trust
root naming those keys (the real host-gcc path is ``support.provision_toolchain``)."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sigforge.bundles import EntryPoint, Provides
from sigforge.bundles.build import build_bundle
from sigforge.bundles.keys import SigningKey
from support import REPO_ROOT

if str(REPO_ROOT / "installer") not in sys.path:
    sys.path.insert(0, str(REPO_ROOT / "installer"))
import dev_setup

ROLES = ("root", "release", "toolchain")


def new_keys() -> dict[str, SigningKey]:
    """One fresh signing key per role of the trust root."""
    return {role: SigningKey.generate() for role in ROLES}


def install_trust(trust_dir: Path, keys: dict[str, SigningKey]) -> None:
    """The development trust root naming ``keys`` (threshold 1 for every role), as ``make run`` installs it."""
    dev_setup.install_dev_trust(trust_dir, keys)


def tool(version: str) -> bytes:
    """A ``cc`` that answers ``--version`` with ``tinycc VERSION`` and fails otherwise."""
    return f'#!/bin/sh\nif [ "$1" = "--version" ]; then echo "tinycc {version}"; exit 0; fi\nexit 3\n'.encode()


def make_bundle(
    tmp: Path,
    key: SigningKey,
    *,
    version: str = "1.0.0",
    reports: str | None = None,
    name: str = "tinycc",
    extra: dict[str, bytes] | None = None,
    role: str = "cc",
) -> Path:
    """A toolchain bundle for ``host-c`` (``bin/cc``, a 5000-byte ``lib/libtiny.a``, ``include/tiny.h``) signed by
    ``key``; ``reports`` makes ``cc --version`` answer another version than the manifest declares; ``role`` is the
    entry point's role (``bin/cc`` serves it either way)."""
    src = tmp / f"src-{name}-{version}-{os.urandom(4).hex()}"
    files = {"bin/cc": tool(reports or version), "lib/libtiny.a": os.urandom(5000), "include/tiny.h": b"int t;\n"}
    files.update(extra or {})
    for rel, data in files.items():
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        (src / rel).write_bytes(data)
        (src / rel).chmod(0o755 if rel.startswith("bin/") else 0o644)
    out = tmp / f"{name}-{version}-{os.urandom(4).hex()}.bundle"
    now = datetime.now(UTC)
    entry = EntryPoint(path="bin/cc", version=f"tinycc {version}")
    build_bundle(
        source=src, out=out, kind="toolchain", name=name, version=version, product="sigforge", host_arch="any",
        created=now - timedelta(minutes=1), expires=now + timedelta(days=30), keys=[key], compression="gzip",
        provides=Provides(targets=("host-c",), entry_points={role: entry}),
    )  # fmt: skip
    return out
