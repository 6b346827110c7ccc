"""The archive: a canonical tar (gzip or zstd) read as a stream, checked member by member, extracted safely.

Layout, in this order: ``manifest.json``, ``signatures.json``, then one ``payload/<path>`` member per manifest entry
(regular files and declared symbolic links, sorted by path). Every header is canonical: owner 0:0 with empty names,
mtime 0, the manifest's mode (0777 for links), no PAX records but ``path``/``linkpath``; after the last member come
zero blocks up to the tar record size, and nothing else. Compression: gzip with a fixed 10-byte header (mtime 0, no
name) or one zstd frame with a content checksum and no dictionary. A reader checks all of this, so the bytes of a
valid bundle cannot change without the bundle being rejected.

Extraction never writes outside a fresh private directory: files are created with ``O_EXCL|O_NOFOLLOW`` under
directories the extractor made itself, links are made last (and only those the manifest declares), and the finished
tree is renamed into place in one step. Any failure removes the temporary directory; nothing half-written remains.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Literal

import zstandard

from sigforge.bundles.manifest import FileEntry, Manifest, SymlinkEntry, check_path
from sigforge.bundles.reasons import Reason, reject
from sigforge.settings import BundleSettings

Compression = Literal["zstd", "gzip"]
MANIFEST_NAME, SIGNATURES_NAME, PAYLOAD_PREFIX = "manifest.json", "signatures.json", "payload/"
MAX_MANIFEST_BYTES, MAX_SIGNATURES_BYTES = 64 * 1024**2, 1024**2
GZIP_HEADER = bytes.fromhex("1f8b08000000000002ff")  # deflate, no flags, mtime 0, max compression, OS unknown
ZSTD_MAGIC = bytes.fromhex("28b52ffd")
ZSTD_MAX_WINDOW = 2**27
LINK_MODE = 0o777
_CHUNK = 1024**2
_RAW_CHUNK = 512  # small compressed steps bound what one decompression call can produce
_ALLOWED_PAX = frozenset({"path", "linkpath"})
# Key files hidden under innocent names. Deliberately narrow: only the PEM armour of keys, which no compiler,
# simulator or release payload needs to ship (sigforge's own source and root metadata are not sniffed: a release
# carries the code that *reads* roots, and the box never takes trust from a bundle anyway).
# Assembled at import so that this source file itself does not carry the markers (a release may ship sources).
_PEM = b"-----" + b"BEGIN "
_TRUST_SNIFF = (_PEM + b"PUBLIC KEY", _PEM + b"PRIVATE KEY", _PEM + b"OPENSSH")


def canonical_info(name: str, *, size: int = 0, mode: int = 0o644, link: str | None = None) -> tarfile.TarInfo:
    """A tar header in the one canonical form the reader accepts."""
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode, 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if link is not None:
        info.type, info.linkname, info.size, info.mode = tarfile.SYMTYPE, link, 0, LINK_MODE
    return info


class _Decompressed:
    """A read-only stream of the decompressed tar that enforces the size, ratio and end-of-stream rules."""

    def __init__(self, raw: IO[bytes], archive_size: int, limits: BundleSettings) -> None:
        self._raw = raw
        head = raw.read(len(GZIP_HEADER))
        self._gzip: zlib._Decompress | None = None
        self._zstd: zstandard.ZstdDecompressionObj | None = None
        if head == GZIP_HEADER:
            self._gzip = zlib.decompressobj(wbits=31)
        elif head[:4] == ZSTD_MAGIC and len(head) > 4 and head[4] & 0x1F == 0x04:
            # frame header: no unused/reserved bits, a content checksum, no dictionary id
            self._zstd = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW).decompressobj()
        else:
            reject(Reason.ARCHIVE_FORMAT, "not a bundle: neither canonical gzip nor a checksummed zstd frame")
        self._pending = head
        self._buf = b""
        self._raw_eof = False
        self.total = 0
        self.digest = hashlib.sha256()  # of every decompressed byte, compared with the canonical stream at the end
        self._ratio_cap = limits.max_compression_ratio * max(archive_size, 1)
        self._size_cap = limits.max_unpacked_bytes + limits.max_files * 2048 + MAX_MANIFEST_BYTES + 2 * _CHUNK

    def _step(self) -> bytes:
        try:
            if self._gzip is not None:
                data = self._gzip.unconsumed_tail or self._pending or self._raw.read(_RAW_CHUNK)
                self._pending = b""
                if not data:
                    self._raw_eof = True
                    return b""
                return self._gzip.decompress(data, _CHUNK)
            assert self._zstd is not None
            data = self._pending or self._raw.read(_RAW_CHUNK)
            self._pending = b""
            if not data:
                self._raw_eof = True
                return b""
            return self._zstd.decompress(data)
        except (zlib.error, zstandard.ZstdError) as exc:
            reject(Reason.ARCHIVE_FORMAT, f"the compressed data is corrupt: {exc}")

    def _ended(self) -> bool:
        if self._gzip is not None:
            return self._gzip.eof
        assert self._zstd is not None
        return bool(self._zstd.eof)

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buf) < size) and not self._raw_eof:
            if self._ended():
                self._raw_eof = True
                break
            out = self._step()
            if self._raw_eof and not self._ended():
                reject(Reason.TRUNCATED, "the compressed stream ends early")
            if out:
                self.digest.update(out)
                self.total += len(out)
                if self.total > self._ratio_cap:
                    reject(Reason.DECOMPRESSION_BOMB, "the archive unpacks beyond bundles.max_compression_ratio")
                if self.total > self._size_cap:
                    reject(Reason.UNPACKED_TOO_LARGE, "the archive unpacks beyond bundles.max_unpacked_bytes")
                self._buf += out
        n = len(self._buf) if size < 0 else size
        data, self._buf = self._buf[:n], self._buf[n:]
        return data

    def finish(self, expected: hashlib._Hash, tar_end: int) -> None:
        """Drain the stream; it must end where the compression ends and equal the canonical tar byte for byte.

        ``expected`` hashes the canonical stream up to ``tar_end`` (headers rebuilt from the manifest, the data
        read); the canonical end is zero blocks up to the next tar record boundary.
        """
        while self.read(_CHUNK):
            pass
        if not self._ended():
            reject(Reason.TRUNCATED, "the compressed stream ends early")
        leftover = self._gzip.unused_data if self._gzip is not None else self._zstd.unused_data  # type: ignore[union-attr]
        if leftover or self._raw.read(1):
            reject(Reason.ARCHIVE_FORMAT, "bytes follow the end of the compressed stream")
        end = -(-(tar_end + 2 * tarfile.BLOCKSIZE) // tarfile.RECORDSIZE) * tarfile.RECORDSIZE
        expected.update(bytes(end - tar_end))
        if self.total != end or self.digest.digest() != expected.digest():
            reject(Reason.ARCHIVE_FORMAT, "the tar is not in canonical form (a damaged header, padding or trailer)")


class PayloadSink:
    """Where verified payload goes: nowhere (verification only) or a private directory (``DirectorySink``)."""

    def open(self, entry: FileEntry) -> IO[bytes] | None:
        return None

    def symlink(self, entry: SymlinkEntry) -> None:
        return None

    def close(self) -> None:
        """Release what the sink holds (called once, after the last member, also on failure)."""
        return None


class DirectorySink(PayloadSink):
    """Writes into a directory the caller created privately; parents are made here, never followed.

    The descriptors of the current parent directory chain are kept open (members arrive sorted by path, so
    consecutive files mostly share their parent): each directory is made and opened once with ``O_NOFOLLOW`` instead
    of re-walking every component for every file, and at most one descriptor per path level is held.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self._chain: list[tuple[str, int]] = []  # (component, descriptor), from the root down

    def _parent(self, rel: str) -> int:
        parts = rel.split("/")[:-1]
        keep = 0
        for (name, _), part in zip(self._chain[1:], parts, strict=False):
            if name != part:
                break
            keep += 1
        if not self._chain:
            self._chain.append(("", os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)))
        while len(self._chain) > keep + 1:
            os.close(self._chain.pop()[1])
        for part in parts[keep:]:
            fd = self._chain[-1][1]
            with suppress(FileExistsError):
                os.mkdir(part, 0o755, dir_fd=fd)
            self._chain.append((part, os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)))
        return self._chain[-1][1]

    def open(self, entry: FileEntry) -> IO[bytes] | None:
        parent = self._parent(entry.path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(entry.path.rsplit("/", 1)[-1], flags, 0o600, dir_fd=parent)
        return os.fdopen(fd, "wb")

    def symlink(self, entry: SymlinkEntry) -> None:
        parent = self._parent(entry.path)
        os.symlink(entry.target, entry.path.rsplit("/", 1)[-1], dir_fd=parent)

    def close(self) -> None:
        while self._chain:
            os.close(self._chain.pop()[1])


def _link_escapes(member_path: str, target: str) -> bool:
    depth = len(member_path.split("/")) - 1
    if target.startswith("/"):
        return True
    for part in target.split("/"):
        depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
        if depth < 0:
            return True
    return False


def _check_metadata(member: tarfile.TarInfo, mode: int) -> None:
    if (
        member.uid or member.gid or member.uname or member.gname or member.mtime != 0 or member.mode != mode
        or member.devmajor or member.devminor or not set(member.pax_headers) <= _ALLOWED_PAX
    ):  # fmt: skip
        reject(Reason.MEMBER_METADATA, f"{member.name!r}: tar header is not canonical", path=member.name)


class BundleReader:
    """One pass over a local bundle file: ``read_header`` then ``read_payload``."""

    def __init__(self, fh: IO[bytes], archive_size: int, limits: BundleSettings) -> None:
        if archive_size > limits.max_archive_bytes:
            reject(Reason.ARCHIVE_TOO_LARGE, f"the bundle is {archive_size} bytes; bundles.max_archive_bytes allows "
                   f"{limits.max_archive_bytes}")  # fmt: skip
        self._stream = _Decompressed(fh, archive_size, limits)
        self._limits = limits
        self._expected = hashlib.sha256()  # the canonical tar stream, rebuilt as members are accepted
        self._pos = 0
        try:
            self._tar = tarfile.open(fileobj=self._stream, mode="r|")  # type: ignore[call-overload]  # noqa: SIM115 - closed with the file
        except tarfile.TarError as exc:
            reject(Reason.ARCHIVE_FORMAT, f"not a tar archive: {exc}")

    def _next(self) -> tarfile.TarInfo | None:
        try:
            member: tarfile.TarInfo | None = self._tar.next()
        except tarfile.TarError as exc:
            reason = Reason.TRUNCATED if "unexpected end" in str(exc) else Reason.ARCHIVE_FORMAT
            reject(reason, f"damaged tar: {exc}")
        except (ValueError, UnicodeError, OverflowError) as exc:
            reject(Reason.ARCHIVE_FORMAT, f"damaged tar: {exc}")
        return member

    def _expect_header(self, info: tarfile.TarInfo) -> None:
        header = info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")
        self._expected.update(header)
        self._pos += len(header)

    def _content(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        """The member's data, chunk by chunk, also fed (with its zero padding) into the canonical stream hash."""
        yield from self._data(member)
        pad = -member.size % tarfile.BLOCKSIZE
        self._expected.update(bytes(pad))
        self._pos += member.size + pad

    def _data(self, member: tarfile.TarInfo) -> Iterator[bytes]:
        fh = self._tar.extractfile(member)
        assert fh is not None
        left = member.size
        while left > 0:
            try:
                chunk = fh.read(min(_CHUNK, left))
            except tarfile.TarError as exc:
                reject(Reason.TRUNCATED, f"{member.name!r}: {exc}")
            if not chunk:
                reject(Reason.TRUNCATED, f"{member.name!r} ends early")
            left -= len(chunk)
            self._expected.update(chunk)
            yield chunk

    def _small(self, name: str, cap: int) -> bytes:
        member = self._next()
        if member is None or member.name != name or not member.isreg() or member.size > cap:
            reject(Reason.ARCHIVE_FORMAT, f"the bundle must begin with {MANIFEST_NAME} and {SIGNATURES_NAME}")
        _check_metadata(member, 0o644)
        self._expect_header(canonical_info(name, size=member.size))
        return b"".join(self._content(member))

    def read_header(self) -> tuple[bytes, bytes]:
        """The manifest's bytes and the signatures' bytes (both unverified)."""
        return self._small(MANIFEST_NAME, MAX_MANIFEST_BYTES), self._small(SIGNATURES_NAME, MAX_SIGNATURES_BYTES)

    def read_payload(self, manifest: Manifest, sink: PayloadSink) -> None:
        """Check every payload member against ``manifest`` (streaming its SHA-256), handing verified data to ``sink``.

        Raises:
            BundleRejected: at the first member or byte that does not match; what the sink got is then untrusted.
        """
        try:
            self._read_payload(manifest, sink)
        finally:
            sink.close()

    def _read_payload(self, manifest: Manifest, sink: PayloadSink) -> None:  # noqa: PLR0912 - one branch per check
        files = {f.path: f for f in manifest.files}
        links = {s.path: s for s in manifest.symlinks}
        seen: set[str] = set()
        while (member := self._next()) is not None:
            name = member.name
            if name.startswith("/") or ".." in name.split("/"):
                reject(Reason.PATH_TRAVERSAL, f"archive member {name!r} leaves the bundle", path=name)
            if not name.startswith(PAYLOAD_PREFIX):
                base = name.rsplit("/", 1)[-1].lower()
                if base in ("root.json", "trust.json") or base.endswith((".pem", ".pub", ".key")) or "keys" in name:
                    reject(Reason.OWN_TRUST, f"the archive carries trust material: {name!r}", path=name)
                reject(Reason.EXTRA_FILE, f"unexpected archive member {name!r}", path=name)
            rel = name[len(PAYLOAD_PREFIX) :]
            check_path(rel)
            if member.islnk():
                reject(Reason.LINK_NOT_ALLOWED, f"{rel!r} is a hard link; bundles hold none", path=rel)
            if member.issym():
                if _link_escapes(rel, member.linkname):
                    reject(Reason.LINK_OUTSIDE, f"link {rel!r} -> {member.linkname!r} leaves the bundle", path=rel)
                if rel not in links or links[rel].target != member.linkname:
                    reject(Reason.LINK_NOT_ALLOWED, f"link {rel!r} is not declared by the manifest", path=rel)
            elif member.type != tarfile.REGTYPE:
                reject(Reason.SPECIAL_FILE, f"{rel!r} is not a regular file (tar type {member.type!r})", path=rel)
            if rel in seen:
                reject(Reason.DUPLICATE_ENTRY, f"the archive holds {rel!r} twice", path=rel)
            seen.add(rel)
            if member.issym():
                _check_metadata(member, LINK_MODE)
                self._expect_header(canonical_info(name, link=links[rel].target))
                continue
            entry = files.get(rel)
            if entry is None:
                reject(Reason.LINK_NOT_ALLOWED if rel in links else Reason.EXTRA_FILE,
                       f"{rel!r} is not a file of the manifest", path=rel)  # fmt: skip
            if member.size != entry.size:
                reject(Reason.SIZE_MISMATCH, f"{rel!r} is {member.size} bytes, the manifest says {entry.size}",
                       path=rel)  # fmt: skip
            _check_metadata(member, entry.mode)
            self._expect_header(canonical_info(name, size=entry.size, mode=entry.mode))
            self._file(member, entry, sink)
        self._stream.finish(self._expected, self._pos)
        missing = sorted((set(files) | set(links)) - seen)
        if missing:
            reject(Reason.MISSING_FILE, f"{len(missing)} manifest entries are not in the archive: {missing[0]!r}…",
                   path=missing[0])  # fmt: skip
        for link in manifest.symlinks:
            sink.symlink(link)

    def _file(self, member: tarfile.TarInfo, entry: FileEntry, sink: PayloadSink) -> None:
        digest = hashlib.sha256()
        out = sink.open(entry)
        try:
            first = True
            for chunk in self._content(member):
                head = chunk[:65536] if first else b""  # sliced once, not once per marker
                if first and any(marker in head for marker in _TRUST_SNIFF):
                    reject(Reason.OWN_TRUST, f"{entry.path!r} holds key or trust material", path=entry.path)
                first = False
                digest.update(chunk)
                if out is not None:
                    out.write(chunk)
            if out is not None:
                out.flush()
                os.fchmod(out.fileno(), entry.mode)  # durability: one os.sync() before the final rename
        finally:
            if out is not None:
                out.close()
        if digest.hexdigest() != entry.sha256:
            reject(Reason.FILE_HASH_MISMATCH, f"{entry.path!r} does not match its SHA-256", path=entry.path)


@contextmanager
def open_bundle(path: Path, limits: BundleSettings) -> Iterator[BundleReader]:
    """Open a *local* bundle file for one reading pass."""
    with path.open("rb") as fh:
        yield BundleReader(fh, os.fstat(fh.fileno()).st_size, limits)


@contextmanager
def private_directory_beside(dest: Path) -> Iterator[Path]:
    """A fresh 0700 directory next to ``dest`` (same file system, so the final rename is atomic); removed on error."""
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.partial-"))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
