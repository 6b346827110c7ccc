"""Small signed toolchains for tests: a shell script as ``cc``, signed with per-test keys, and the development trust
root naming those keys (the real host-gcc path is ``support.provision_toolchain``)."""

from __future__ import annotations

import gzip
import io
import json
import os
import sys
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sigforge.bundles import EntryPoint, Provides
from sigforge.bundles.archive import canonical_info
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


def with_bad_signature(good_gzip_bundle: Path, out: Path | None = None) -> Path:
    """The same (gzip) bundle with one character of its signature changed (still well-formed: only the check fails),
    written to ``out`` (default: ``bad-signature-<name>`` beside it)."""
    members: list[tuple[tarfile.TarInfo, bytes]] = []
    with tarfile.open(good_gzip_bundle, "r:gz") as tar:
        for m in tar:
            data = tar.extractfile(m).read() if m.isreg() else b""  # type: ignore[union-attr]
            if m.name == "signatures.json":
                doc = json.loads(data)
                sig = doc["signatures"][0]["sig"]
                doc["signatures"][0]["sig"] = sig[:10] + ("0" if sig[10] != "0" else "1") + sig[11:]
                data = json.dumps(doc, separators=(",", ":")).encode()
            info = canonical_info(m.name, size=len(data), mode=m.mode, link=m.linkname if m.issym() else None)
            members.append((info, data))
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out = out or good_gzip_bundle.with_name(f"bad-signature-{good_gzip_bundle.name}")
    with out.open("wb") as fh, gzip.GzipFile(fileobj=fh, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out
