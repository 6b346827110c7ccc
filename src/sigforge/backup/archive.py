"""The archive itself: one zstd frame (with its content checksum) holding a tar of, in this order, ``backup.json``,
``backup.sig`` and one ``payload/<path>`` regular file per entry of ``backup.json``'s file list, sorted by path.

Reading is one streaming pass that fails closed: the signature is checked before any payload byte is looked at;
every payload member must be listed, appear once, be a regular file and match its size and SHA-256; a listed file
that never comes is ``file-missing``; anything after the tar inside or after the zstd frame is refused. With a
destination directory the files are written there as they are checked (``O_EXCL|O_NOFOLLOW`` under directories made
here); the caller owns that directory and removes it when reading fails.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from sigforge.backup.format import (
    INFO_NAME,
    MAX_INFO_BYTES,
    MAX_SIGNATURE_BYTES,
    PAYLOAD_PREFIX,
    SIGNATURE_NAME,
    BackupInfo,
    FileRecord,
    Reason,
    decode_info,
    reject,
)
from sigforge.backup.signing import TrustedKey, verify_signature
from sigforge.errors import BackupRejected, IntegrityError

ZSTD_MAGIC = bytes.fromhex("28b52ffd")
ZSTD_LEVEL = 3
ZSTD_MAX_WINDOW = 2**27
_CHUNK = 1024**2
_RAW_STEP = 2048  # compressed bytes per step: bounds one step's output (zstd's best ratio)


def sha256_file(path: Path) -> tuple[int, str]:
    """Size and SHA-256 of a file."""
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return size, digest.hexdigest()


def _info(name: str, size: int, mode: int = 0o600) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = size, mode, 0, 0, 0, "", ""
    return info


class _HashingReader(io.RawIOBase):
    def __init__(self, fh: IO[bytes]) -> None:
        self._fh = fh
        self.digest = hashlib.sha256()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        data = self._fh.read(size)
        self.digest.update(data)
        return data


def write_archive(out: Path, info: BackupInfo, info_bytes: bytes, sig_bytes: bytes, staging: Path) -> None:
    """Write the archive to ``out`` atomically (temp file, fsync, rename); the payload comes from ``staging/<path>``.

    Raises:
        IntegrityError: a staged file changed between being listed and being archived.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.{os.urandom(4).hex()}.tmp"
    try:
        with tmp.open("xb") as fh:
            cctx = zstandard.ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True)
            with (
                cctx.stream_writer(fh, closefd=False) as zst,
                tarfile.open(fileobj=zst, mode="w|", format=tarfile.PAX_FORMAT, encoding="utf-8") as tar,
            ):
                tar.addfile(_info(INFO_NAME, len(info_bytes), 0o644), io.BytesIO(info_bytes))
                tar.addfile(_info(SIGNATURE_NAME, len(sig_bytes), 0o644), io.BytesIO(sig_bytes))
                for record in sorted(info.files, key=lambda r: r.path):
                    with (staging / record.path).open("rb") as src:
                        reader = _HashingReader(src)
                        tar.addfile(_info(PAYLOAD_PREFIX + record.path, record.size), reader)
                    if reader.digest.hexdigest() != record.sha256:
                        raise IntegrityError(f"{record.path} changed while the backup was being written")
            fh.flush()
            os.fsync(fh.fileno())
        tmp.chmod(0o600)
        tmp.replace(out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass(frozen=True, slots=True)
class VerifiedBackup:
    """An archive whose signature and every file were checked."""

    info: BackupInfo
    info_bytes: bytes
    keyid: str


def _write_new(dest: Path, rel: str) -> IO[bytes]:
    target = dest / rel
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    return os.fdopen(fd, "wb")


def _copy_member(src: IO[bytes], record: FileRecord, sink: IO[bytes] | None) -> None:
    digest = hashlib.sha256()
    size = 0
    while chunk := src.read(_CHUNK):
        digest.update(chunk)
        size += len(chunk)
        if sink is not None:
            sink.write(chunk)
    if size != record.size or digest.hexdigest() != record.sha256:
        reject(Reason.FILE_CHANGED, f"{record.path} does not match backup.json: sha256 {digest.hexdigest()}, "
               f"expected {record.sha256}", path=record.path)  # fmt: skip


def _small(tar: tarfile.TarFile, expected: str, limit: int) -> bytes:
    member = tar.next()
    if member is None or member.name != expected or not member.isreg():
        reject(Reason.FORMAT, f"not a sigforge backup: the archive does not start with {expected}")
    if member.size > limit:
        reject(Reason.FORMAT, f"{expected} is too large ({member.size} bytes)")
    fh = tar.extractfile(member)
    assert fh is not None  # a regular file
    return fh.read()


def read_archive(
    path: Path,
    trusted: TrustedKey | None,
    dest: Path | None = None,
    *,
    accept: Callable[[BackupInfo], None] | None = None,
) -> VerifiedBackup:
    """Verify the archive at ``path`` (and extract its payload into ``dest`` when given).

    ``accept`` is called with the signed ``BackupInfo`` before any payload is read (the restore's version and
    free-space checks). Raises ``BackupRejected`` with the precise reason and path.
    """
    try:
        fh = path.open("rb")
    except OSError as exc:
        reject(Reason.FORMAT, f"cannot read {path}: {exc.strerror}")
    with fh:
        if fh.read(4) != ZSTD_MAGIC:
            reject(Reason.FORMAT, f"{path} is not a sigforge backup (not a zstd archive)")
        fh.seek(0)
        try:
            return _read(fh, trusted, dest, accept)
        except (zstandard.ZstdError, tarfile.TarError, EOFError) as exc:
            reject(Reason.FORMAT, f"{path} is corrupt: {exc}")


class _Decompressed(io.RawIOBase):
    """The decompressed tar: small input steps bound what one call can produce; the frame must end the file."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._obj = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
        self._buf = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buf) < size) and not self._obj.eof:
            data = self._raw.read(_RAW_STEP)
            if not data:
                reject(Reason.FORMAT, "the archive is truncated (the compressed stream ends early)")
            self._buf += self._obj.decompress(data)
        out, self._buf = (self._buf, b"") if size < 0 else (self._buf[:size], self._buf[size:])
        return out

    def finish(self) -> None:
        """After the tar's end: only tar padding (zeros) may remain, and nothing after the zstd frame."""
        while chunk := self.read(_CHUNK):
            if chunk.count(0) != len(chunk):
                reject(Reason.FORMAT, "the archive has data after its end")
        if self._obj.unused_data or self._raw.read(1):
            reject(Reason.FORMAT, "the archive has data after its compressed stream")


def _read(
    fh: IO[bytes], trusted: TrustedKey | None, dest: Path | None, accept: Callable[[BackupInfo], None] | None
) -> VerifiedBackup:
    stream = _Decompressed(fh)
    tar = tarfile.open(fileobj=stream, mode="r|", encoding="utf-8")  # noqa: SIM115 - a stream; nothing to close
    info_bytes = _small(tar, INFO_NAME, MAX_INFO_BYTES)
    sig_bytes = _small(tar, SIGNATURE_NAME, MAX_SIGNATURE_BYTES)
    info = decode_info(info_bytes)
    keyid = verify_signature(info_bytes, sig_bytes, trusted)
    if accept is not None:
        accept(info)
    expected = {r.path: r for r in info.files}
    seen: set[str] = set()
    while (member := tar.next()) is not None:
        rel = member.name.removeprefix(PAYLOAD_PREFIX)
        record = expected.get(rel) if member.name.startswith(PAYLOAD_PREFIX) else None
        if record is None:
            reject(Reason.FILE_EXTRA, f"the archive holds a file that backup.json does not list: {member.name}",
                   path=member.name)  # fmt: skip
        if rel in seen or not member.isreg():
            reject(Reason.FORMAT, f"{member.name} appears twice or is not a regular file", path=rel)
        if member.size != record.size:
            reject(Reason.FILE_CHANGED, f"{rel} is {member.size} bytes, backup.json says {record.size}", path=rel)
        seen.add(rel)
        src = tar.extractfile(member)
        assert src is not None
        if dest is None:
            _copy_member(src, record, None)
        else:
            with _write_new(dest, rel) as sink:
                _copy_member(src, record, sink)
    missing = sorted(set(expected) - seen)
    if missing:
        reject(Reason.FILE_MISSING, f"{missing[0]} is listed in backup.json but not in the archive"
               + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""), path=missing[0])  # fmt: skip
    stream.finish()  # reaching the frame end is also what checks the zstd content checksum
    return VerifiedBackup(info, info_bytes, keyid)


__all__ = ["BackupRejected", "VerifiedBackup", "read_archive", "sha256_file", "write_archive"]
