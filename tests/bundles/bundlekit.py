"""Helpers for the bundle tests: keys, trust roots, real bundles, hand-crafted (malicious) archives, a box."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from sigforge.bundles import (
    STATE_FILE,
    TrustState,
    extract_verified,
    load_trust,
    local_copy,
    record_accepted,
    verify_bundle,
)
from sigforge.bundles.archive import canonical_info
from sigforge.bundles.build import build_bundle, sign_manifest
from sigforge.bundles.keys import SigningKey
from sigforge.bundles.manifest import FileEntry, Manifest, canonical_bytes
from sigforge.bundles.state import atomic_write, save_state
from sigforge.bundles.trust import ROLES, SignedRoot, encode_root, make_root_metadata, sign_root
from sigforge.bundles.version import Version
from sigforge.settings import BundleSettings

CREATED = datetime(2030, 1, 1, tzinfo=UTC)
EXPIRES = datetime(2031, 1, 1, tzinfo=UTC)
NOW = datetime(2030, 6, 1, tzinfo=UTC)
LIMITS = BundleSettings()
FILES = {"bin/cc": b"#!/bin/sh\necho cc 1.0\n", "lib/libm.a": b"\x7fELF" + bytes(range(256)) * 4, "README": b"hi\n"}
EXEC = {"bin/cc"}


def make_trust(n: int = 1, thresholds: dict[str, int] | None = None) -> tuple[SignedRoot, dict[str, list[SigningKey]]]:
    keys = {role: [SigningKey.generate() for _ in range(n)] for role in ROLES}
    meta = make_root_metadata(
        version=1,
        expires=datetime(2040, 1, 1, tzinfo=UTC),
        role_keys_={r: [k.public for k in keys[r]] for r in ROLES},
        thresholds=thresholds or {},  # type: ignore[arg-type]
    )
    return sign_root(meta, keys["root"]), keys


def write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, data in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(0o755 if rel in EXEC else 0o644)
    return root


def build(tmp: Path, keys: Sequence[SigningKey], *, files: dict[str, bytes] | None = None, name: str = "b.bundle",
          compression: str = "gzip", **fields: object) -> Path:  # fmt: skip
    src = write_tree(tmp / f"src-{name}", files or FILES)
    args: dict[str, object] = {"kind": "toolchain", "name": "gcc-arm", "version": "1.0.0", "product": "sigforge",
                                   "host_arch": "any", "created": CREATED, "expires": EXPIRES}  # fmt: skip
    args.update(fields)
    out = tmp / name
    build_bundle(source=src, out=out, keys=keys, compression=compression, **args)  # type: ignore[arg-type]
    return out


def entries(files: dict[str, bytes]) -> tuple[FileEntry, ...]:
    return tuple(
        FileEntry(path=p, size=len(d), mode=0o755 if p in EXEC else 0o644, sha256=hashlib.sha256(d).hexdigest())
        for p, d in sorted(files.items())
    )


def manifest_bytes(files: dict[str, bytes] | None = None, **fields: object) -> bytes:
    doc: dict[str, object] = {"kind": "toolchain", "name": "gcc-arm", "version": "1.0.0", "product": "sigforge",
                                  "host_arch": "any", "created": CREATED, "expires": EXPIRES,
                                  "files": entries(files or FILES)}  # fmt: skip
    doc.update(fields)
    return canonical_bytes(msgspec.convert(doc, Manifest, from_attributes=True))


def payload(files: dict[str, bytes]) -> list[tuple[tarfile.TarInfo, bytes]]:
    return [
        (canonical_info("payload/" + p, size=len(d), mode=0o755 if p in EXEC else 0o644), d)
        for p, d in sorted(files.items())
    ]


def craft(path: Path, manifest: bytes, signatures: bytes, members: list[tuple[tarfile.TarInfo, bytes]],
          *, header: bool = True) -> Path:  # fmt: skip
    """Write an archive member by member with ``tarfile`` (the members may be anything at all), gzip-compressed."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        if header:
            for name, data in (("manifest.json", manifest), ("signatures.json", signatures)):
                tar.addfile(canonical_info(name, size=len(data)), io.BytesIO(data))
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    path.write_bytes(out.getvalue())
    return path


def crafted(path: Path, keys: Sequence[SigningKey], members: list[tuple[tarfile.TarInfo, bytes]] | None = None,
            files: dict[str, bytes] | None = None, **fields: object) -> Path:  # fmt: skip
    """A correctly signed manifest for ``files`` with the archive members given (default: the right ones)."""
    data = manifest_bytes(files, **fields)
    return craft(path, data, sign_manifest(data, keys), payload(files or FILES) if members is None else members)


class Box:
    """An appliance's trust directory, state and install area; ``install`` is the registry's flow."""

    def __init__(self, tmp: Path, root: SignedRoot, state: TrustState | None = None) -> None:
        self.tmp = tmp
        self.trust, self.area, self.work = tmp / "trust", tmp / "installed", tmp / "work"
        self.area.mkdir()
        atomic_write(self.trust / "root.json", encode_root(root))
        save_state(self.trust / STATE_FILE, state or TrustState(time_floor=datetime(2029, 1, 1, tzinfo=UTC)))
        self.before = self.snapshot()

    def snapshot(self) -> dict[str, bytes | str]:
        out: dict[str, bytes | str] = {}
        for base in (self.trust, self.area, self.work):
            for p in sorted(base.rglob("*")) if base.exists() else []:
                rel = str(p.relative_to(self.tmp))
                out[rel] = "link" if p.is_symlink() else ("dir" if p.is_dir() else p.read_bytes())
        return out

    def install(self, bundle: Path, *, now: datetime = NOW, installed: str | None = None, product: str = "sigforge",
                arch: str = "x86_64", limits: BundleSettings = LIMITS, kind: str | None = None) -> Path:  # fmt: skip
        root, state = load_trust(self.trust)
        with local_copy(bundle, limits, self.work) as copy:
            verified = verify_bundle(
                copy, trust_root=root, state=state, now=now, expected_product=product, host_arch=arch,
                installed_version=Version.parse(installed) if installed else None, limits=limits,
                expected_kind=kind,  # type: ignore[arg-type]
            )  # fmt: skip
            dest = extract_verified(verified, self.area / f"{verified.manifest.name}-{verified.manifest.version}",
                                    limits)  # fmt: skip
        record_accepted(self.trust / STATE_FILE, verified.manifest)
        return dest

    def assert_untouched(self) -> None:
        assert self.snapshot() == self.before
