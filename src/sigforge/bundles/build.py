"""Building a bundle on the connected build host: scan a directory, sign the manifest, write a canonical archive.

Deterministic: the same directory contents, fields and keys give the same bytes (entries sorted, canonical tar
headers, gzip mtime 0, single-threaded zstd; Ed25519 signatures are deterministic). The builder refuses what the
verifier would refuse (``validate_manifest``) and a file that changes while it is being archived.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

import zstandard

from sigforge.bundles.archive import (
    MANIFEST_NAME,
    PAYLOAD_PREFIX,
    SIGNATURES_NAME,
    Compression,
    canonical_info,
)
from sigforge.bundles.keys import MANIFEST_CONTEXT, SigningKey
from sigforge.bundles.manifest import (
    FileEntry,
    Kind,
    Manifest,
    Provides,
    SymlinkEntry,
    canonical_bytes,
    validate_manifest,
)
from sigforge.bundles.trust import Signature
from sigforge.bundles.verify import Signatures
from sigforge.errors import BundleRejected, InvalidInput

ZSTD_LEVEL = 12


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1024**2):
            digest.update(chunk)
    return digest.hexdigest()


def scan_directory(root: Path) -> tuple[tuple[FileEntry, ...], tuple[SymlinkEntry, ...]]:
    """Every regular file and symbolic link under ``root``, sorted by path (empty directories are not kept).

    Raises:
        InvalidInput: ``root`` is not a directory, or holds a device, FIFO or socket.
    """
    if not root.is_dir():
        raise InvalidInput(f"{root} is not a directory")
    files: list[FileEntry] = []
    links: list[SymlinkEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                links.append(SymlinkEntry(path=rel, target=str(path.readlink())))
            elif stat.S_ISREG(st.st_mode):
                mode = 0o755 if st.st_mode & 0o100 else 0o644
                files.append(FileEntry(path=rel, size=st.st_size, mode=mode, sha256=_sha256_of(path)))
            else:
                raise InvalidInput(f"{path} is not a regular file or a link; bundles hold only those")
    return tuple(sorted(files, key=lambda f: f.path)), tuple(sorted(links, key=lambda s: s.path))


def sign_manifest(manifest_bytes: bytes, keys: Sequence[SigningKey]) -> bytes:
    """``signatures.json`` for ``manifest_bytes``, one signature per distinct key, sorted by key id."""
    unique = {key.keyid: key for key in keys}
    signatures = tuple(
        Signature(keyid=kid, sig=unique[kid].sign(manifest_bytes, MANIFEST_CONTEXT).hex()) for kid in sorted(unique)
    )
    return canonical_bytes(Signatures(signatures=signatures))


def write_tar(fh: IO[bytes], manifest: Manifest, manifest_bytes: bytes, signature_bytes: bytes, root: Path) -> None:
    """The canonical tar: header members, then the payload in path order (re-hashing each file as it is added)."""
    import io

    with tarfile.open(fileobj=fh, mode="w", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar:
        for name, data in ((MANIFEST_NAME, manifest_bytes), (SIGNATURES_NAME, signature_bytes)):
            tar.addfile(canonical_info(name, size=len(data)), io.BytesIO(data))
        entries: list[FileEntry | SymlinkEntry] = [*manifest.files, *manifest.symlinks]
        for entry in sorted(entries, key=lambda e: e.path):
            name = PAYLOAD_PREFIX + entry.path
            if isinstance(entry, SymlinkEntry):
                tar.addfile(canonical_info(name, link=entry.target))
                continue
            with (root / entry.path).open("rb") as src:
                tar.addfile(canonical_info(name, size=entry.size, mode=entry.mode), src)
            if _sha256_of(root / entry.path) != entry.sha256:
                raise InvalidInput(f"{entry.path} changed while the bundle was being built")


def compress(tar_path: Path, out: IO[bytes], compression: Compression, zstd_level: int = ZSTD_LEVEL) -> None:
    if compression == "gzip":
        with (
            tar_path.open("rb") as src,
            gzip.GzipFile(fileobj=out, mode="wb", compresslevel=9, mtime=0, filename="") as gz,
        ):
            shutil.copyfileobj(src, gz, 1024**2)
        return
    cctx = zstandard.ZstdCompressor(level=zstd_level, write_checksum=True, write_content_size=True, threads=0)
    with tar_path.open("rb") as src:
        cctx.copy_stream(src, out, size=tar_path.stat().st_size)


def build_bundle(
    *,
    source: Path,
    out: Path,
    kind: Kind,
    name: str,
    version: str,
    product: str,
    host_arch: str,
    created: datetime,
    expires: datetime,
    keys: Sequence[SigningKey],
    compression: Compression = "zstd",
    zstd_level: int = ZSTD_LEVEL,
    min_installed_version: str | None = None,
    provides: Provides | None = None,
) -> Manifest:
    """Build, sign and write one bundle to ``out`` (atomically); return its manifest.

    Raises:
        InvalidInput: bad fields, no keys, or content the verifier would reject (the reason is in the message).
    """
    if not keys:
        raise InvalidInput("a bundle needs at least one signing key")
    files, links = scan_directory(source)
    if not files:
        raise InvalidInput(f"{source} holds no files")
    try:
        import msgspec

        manifest = msgspec.convert(
            {
                "kind": kind, "name": name, "version": version, "product": product, "host_arch": host_arch,
                "created": created.astimezone(UTC).replace(microsecond=0),
                "expires": expires.astimezone(UTC).replace(microsecond=0),
                "min_installed_version": min_installed_version, "files": files, "symlinks": links,
                "provides": provides,
            },
            Manifest,
            from_attributes=True,
        )  # fmt: skip
        validate_manifest(manifest)
    except msgspec.ValidationError as exc:
        raise InvalidInput(f"bad bundle field: {exc}") from None
    except BundleRejected as exc:
        raise InvalidInput(f"the verifier would reject this bundle: {exc}") from None
    manifest_bytes = canonical_bytes(manifest)
    signature_bytes = sign_manifest(manifest_bytes, keys)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        tar_path, packed = Path(tmp) / "bundle.tar", Path(tmp) / "bundle"
        with tar_path.open("wb") as fh:
            write_tar(fh, manifest, manifest_bytes, signature_bytes, source)
        with packed.open("wb") as fh:
            compress(tar_path, fh, compression, zstd_level)
            fh.flush()
            os.fsync(fh.fileno())
        packed.chmod(0o644)
        packed.replace(out)
    return manifest
