"""Checking that an installed toolchain tree is exactly what its signed manifest lists.

Two checks, both fail-closed:

* ``full_check`` re-hashes every file (SHA-256, two or more threads: ``hashlib`` releases the GIL while it hashes,
  so a 2-core box hashes two files at once) and walks the tree for anything the manifest does not list (extra files,
  symlinks, devices). It returns every problem found, not only the first, so an operator sees the whole damage.
* ``fast_check`` compares each file's and each directory's ``lstat`` stamp (size, mtime, ctime, inode, mode) with a
  cache written after the last clean full check. Any difference (or no cache at all) means "re-hash", never "fine":
  the caller then runs ``full_check``. A writer cannot change a file's bytes without the kernel moving its ctime, and
  cannot add or remove an entry without moving its directory's mtime/ctime, so an unchanged stamp set is evidence
  the bytes are the ones last hashed. (Someone able to reset the clock *and* rewrite ctime is root on the box; the
  scheduled full re-hash is the answer to that, see ``docs/toolchains.md``.)

Invariants: no I/O outside ``root`` and the cache file the caller names; paths in records are relative POSIX paths
already validated by the bundle verifier (no ``..``, not absolute).
"""

from __future__ import annotations

import errno
import hashlib
import operator
import os
import stat
import struct
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import msgspec

from sigforge import fsutil

# A stamp: (size, st_mode, mtime_ns, ctime_ns, inode, device). Plain tuples: comparing them is the hot loop.
Stamp = tuple[int, int, int, int, int, int]

CHUNK = 1 << 20
# Files below this size are hashed in one read; most toolchain files (headers, small libs) are.
SMALL = 1 << 18
CACHE_VERSION = 2
# File timestamps come from the kernel's coarse clock (one tick: 1-10 ms). A file changed within the same tick as the
# hash that vouched for it can keep an identical stamp ("racy clean", as git calls it), so stamps this close to the
# start of the hashing are stored as never-matching, and the next check re-hashes them.
RACY_WINDOW_NS = 50_000_000
_RACY: Stamp = (2**64 - 1, 0, 0, 0, 0, 0)  # a size no file has: never matches
# One packed stamp per file in the cache: size, mode, mtime_ns, ctime_ns (signed), inode, device (unsigned 64-bit).
_PACKED = struct.Struct("<QQqqQQ")
_STAMP_FIELDS = operator.attrgetter("st_size", "st_mode", "st_mtime_ns", "st_ctime_ns", "st_ino", "st_dev")


class FileSpec(Protocol):
    """What the checks need of a manifest's file entry (``bundles.FileEntry`` has exactly these fields)."""

    @property
    def path(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def mode(self) -> int: ...
    @property
    def sha256(self) -> str: ...


@dataclass(frozen=True, slots=True)
class ExpectedFile:
    """One file as the signed manifest lists it.

    Attributes:
        path: relative POSIX path inside the tree.
        size: size in bytes.
        mode: permission bits (``0o755``); compared with ``stat.S_IMODE``.
        sha256: lower-case hex digest.
    """

    path: str
    size: int
    mode: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Problem:
    """One way the tree differs from the manifest.

    Attributes:
        path: relative path of the offending entry.
        kind: ``missing``, ``extra``, ``not-a-file``, ``size``, ``mode``, ``hash`` or ``unreadable``.
        detail: a human sentence with the expected and actual values.
    """

    path: str
    kind: str
    detail: str


class _Cache(msgspec.Struct, frozen=True):
    version: int
    manifest_sha256: str
    # directory ("" for the root) -> its own stamp
    dirs: dict[str, Stamp]
    # directory -> (the listed files directly inside it, "/"-joined; their stamps packed with ``_PACKED``, in order).
    # Two objects per directory instead of two per file: decoding stays cheap on a 20,000-file tree.
    files: dict[str, tuple[str, bytes]]


def _stamp(st: os.stat_result) -> Stamp:
    return (st.st_size, st.st_mode, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)


def _by_directory(paths: Iterable[str]) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = {}
    for path in paths:
        head, _, name = path.rpartition("/")
        groups.setdefault(head, []).append(name)
    return groups


def _stat_group(base: str, head: str, names: Sequence[str]) -> list[tuple[str, Stamp]]:
    # One directory descriptor per directory: the kernel resolves each name once instead of walking the whole path.
    fd = os.open(f"{base}/{head}" if head else base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        return [(name, _stamp(os.stat(name, dir_fd=fd, follow_symlinks=False))) for name in names]
    finally:
        os.close(fd)


def _group_matches(base: str, head: str, names: Sequence[str], packed: bytes) -> bool:
    """Whether the files ``names`` of directory ``head`` still have the ``packed`` stamps (one fstatat per name)."""
    fd = os.open(f"{base}/{head}" if head else base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # attrgetter builds each stamp in C, and iter_unpack decodes the expected ones only here, per directory.
        live = [_STAMP_FIELDS(os.stat(name, dir_fd=fd, follow_symlinks=False)) for name in names]
        return live == list(_PACKED.iter_unpack(packed))
    finally:
        os.close(fd)


_buffers = threading.local()


def _read_buffer() -> tuple[bytearray, memoryview]:
    """This thread's read buffer: allocated once, not per file (zero-filling 1 MiB per small file used to cost more
    CPU than hashing it)."""
    pair: tuple[bytearray, memoryview] | None = getattr(_buffers, "pair", None)
    if pair is None:
        buffer = bytearray(CHUNK)
        pair = _buffers.pair = (buffer, memoryview(buffer))
    return pair


def _sha256_fd(fd: int, size: int) -> tuple[str, int]:
    """Hex SHA-256 of an open file and the number of bytes hashed; ``size`` is what ``fstat`` said.

    A file of up to ``SMALL`` bytes is read with one ``read`` of ``size + 1`` bytes: the extra byte notices a file
    that grew since the ``fstat`` (the byte count then differs from ``size``), and no second call is needed to see
    the end. Larger files are read in ``CHUNK``s into this thread's buffer; ``hashlib`` releases the GIL while it
    hashes them.
    """
    if size <= SMALL:
        data = os.read(fd, size + 1)
        return hashlib.sha256(data).hexdigest(), len(data)
    digest = hashlib.sha256()
    buffer, view = _read_buffer()
    total = 0
    while read := os.readv(fd, (buffer,)):
        digest.update(view[:read])
        total += read
    return digest.hexdigest(), total


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of one file, read without following a final symlink (``O_NOFOLLOW``)."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        return _sha256_fd(fd, os.fstat(fd).st_size)[0]
    finally:
        os.close(fd)


def _stat_problem(expected: FileSpec, st: os.stat_result) -> Problem | None:
    if not stat.S_ISREG(st.st_mode):
        return Problem(expected.path, "not-a-file", "expected a regular file")
    if st.st_size != expected.size:
        return Problem(expected.path, "size", f"size {st.st_size} bytes, manifest says {expected.size}")
    if stat.S_IMODE(st.st_mode) != expected.mode:
        return Problem(expected.path, "mode", f"mode {stat.S_IMODE(st.st_mode):o}, manifest says {expected.mode:o}")
    return None


# Opened without following a final symlink, and without blocking on a FIFO planted where a file should be (its
# ``fstat`` then says "not a regular file"). Open-then-``fstat`` costs four system calls per small file (open, fstat,
# read, close) where ``lstat`` + a buffered file object cost six: on a 20,000-file tree that is most of the gap to
# ``sha256sum``.
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


def _content_problem(fd: int, expected: FileSpec) -> Problem | None:
    st = os.fstat(fd)
    if (problem := _stat_problem(expected, st)) is not None:
        return problem
    actual, count = _sha256_fd(fd, st.st_size)
    if count != st.st_size:
        return Problem(expected.path, "size", f"changed while read ({count} bytes, manifest says {expected.size})")
    if actual != expected.sha256:
        return Problem(expected.path, "hash", f"SHA-256 {actual}, manifest says {expected.sha256}")
    return None


def _check_one(base: str, expected: FileSpec) -> Problem | None:
    try:
        fd = os.open(f"{base}/{expected.path}", _OPEN_FLAGS)
    except FileNotFoundError:
        return Problem(expected.path, "missing", "listed in the manifest but absent")
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            return Problem(expected.path, "not-a-file", "expected a regular file, found a symbolic link")
        return Problem(expected.path, "unreadable", f"cannot read: {exc.strerror}")
    try:
        return _content_problem(fd, expected)
    except OSError as exc:
        return Problem(expected.path, "unreadable", f"cannot read: {exc.strerror}")
    finally:
        os.close(fd)


def _walk(root: Path) -> Iterable[tuple[str, os.stat_result]]:
    """Every entry under ``root`` (relative path, lstat), directories included, never following links."""
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in entries:
                child = f"{rel}/{entry.name}" if rel else entry.name
                st = entry.stat(follow_symlinks=False)
                yield child, st
                if stat.S_ISDIR(st.st_mode):
                    stack.append(child)


def _parents(path: str) -> Iterable[str]:
    """Every proper ancestor directory of ``path`` ("a/b/c" gives "a", "a/b")."""
    parts = path.split("/")[:-1]
    for i in range(1, len(parts) + 1):
        yield "/".join(parts[:i])


def full_check(
    root: Path, files: Sequence[FileSpec], *, links: Mapping[str, str] | None = None, workers: int = 2
) -> list[Problem]:
    """Re-hash every listed file and look for entries the manifest does not list.

    Args:
        root: the installed tree.
        files: the manifest's file list.
        links: the manifest's symbolic links (path -> target, as declared); any other link is a problem.
        workers: hashing threads (at least 1).

    Returns:
        Every problem found, sorted by path; empty when the tree is exactly the manifest.
    """
    if not root.is_dir():
        return [Problem(".", "missing", f"toolchain directory {root} is absent")]
    links = links or {}
    listed = {f.path for f in files}
    allowed_dirs = {d for path in (*listed, *links) for d in _parents(path)}
    problems: list[Problem] = []
    seen_links: set[str] = set()
    for rel, st in _walk(root):
        if stat.S_ISDIR(st.st_mode):
            if rel not in allowed_dirs:
                problems.append(Problem(rel, "extra", "directory not in the manifest"))
        elif stat.S_ISLNK(st.st_mode) and rel in links:
            seen_links.add(rel)
            if (actual := str((root / rel).readlink())) != links[rel]:
                problems.append(Problem(rel, "link", f"points to {actual!r}, manifest says {links[rel]!r}"))
        elif rel not in listed:
            problems.append(Problem(rel, "extra", "not in the manifest"))
    problems.extend(
        Problem(rel, "missing", "link listed in the manifest but absent") for rel in links.keys() - seen_links
    )
    # Largest first so that the threads finish together instead of one hashing the biggest file alone at the end.
    # Each thread takes the next file from one shared iterator: no future per file (22,000 futures cost more CPU
    # than hashing the small files they stand for).
    pending = iter(sorted(files, key=lambda f: f.size, reverse=True))
    lock = threading.Lock()
    base = str(root)

    def rehash() -> list[Problem]:
        found: list[Problem] = []
        while True:
            with lock:
                expected = next(pending, None)
            if expected is None:
                return found
            if (problem := _check_one(base, expected)) is not None:
                found.append(problem)

    count = max(1, workers)
    with ThreadPoolExecutor(max_workers=count, thread_name_prefix="rehash") as pool:
        for found in [pool.submit(rehash) for _ in range(count)]:
            problems.extend(found.result())
    return sorted(problems, key=lambda p: (p.path, p.kind))


def verify_and_stamp(
    root: Path,
    files: Sequence[FileSpec],
    cache_file: Path,
    manifest_id: str,
    *,
    links: Mapping[str, str] | None = None,
    workers: int = 2,
) -> list[Problem]:
    """Run ``full_check``; when the tree is clean, record its stamps for ``fast_check``.

    Args:
        root: the installed tree.
        files: the manifest's file list (every one is stamped).
        cache_file: where the stamps live (outside ``root``, so the tree stays exactly the manifest).
        manifest_id: the SHA-256 of the signed manifest; stamps are valid only for the manifest they were written for.
        links: the manifest's symbolic links (path -> target).
        workers: hashing threads.

    Returns:
        The problems found (the stamps are written only when there are none; a stale cache is removed otherwise).
    """
    started_ns = time.time_ns()
    problems = full_check(root, files, links=links, workers=workers)
    if problems:
        cache_file.unlink(missing_ok=True)
        return problems
    paths = [f.path for f in files] + list(links or ())
    _write_stamps(root, paths, cache_file, manifest_id, racy_after_ns=started_ns - RACY_WINDOW_NS)
    return []


def settle() -> None:
    """Wait until the clock has moved past the racy window of files written until now.

    Called after extracting a tree and before its first full check, so that the stamps written by that check are all
    trustworthy and the first use does not need a re-hash.
    """
    time.sleep(RACY_WINDOW_NS / 1e9 + 0.005)


def _write_stamps(root: Path, paths: Sequence[str], cache_file: Path, manifest_id: str, *, racy_after_ns: int) -> None:
    base = str(root)
    groups = _by_directory(paths)

    def trusted(stamp: Stamp) -> Stamp:
        return _RACY if max(stamp[2], stamp[3]) >= racy_after_ns else stamp

    entries = {
        head: ("/".join(names), b"".join(_PACKED.pack(*trusted(stamp)) for _, stamp in _stat_group(base, head, names)))
        for head, names in groups.items()
    }
    all_dirs = {d for path in paths for d in _parents(path)} | {""}
    dirs = {d: trusted(_stamp(os.lstat(f"{base}/{d}" if d else base))) for d in all_dirs}
    payload = msgspec.msgpack.encode(_Cache(CACHE_VERSION, manifest_id, dirs, entries))
    fsutil.atomic_write(cache_file, payload, 0o644)


def fast_check(root: Path, cache_file: Path, manifest_id: str) -> bool:
    """Whether every stamp still matches the cache written after the last clean full check.

    ``False`` (no cache, a corrupt cache, a cache for another manifest, or any stamp differing) means the caller must
    run ``full_check``; ``True`` is the only answer that skips re-hashing. One thread on purpose: the cost is one
    ``fstatat`` per file, and threads only add GIL hand-offs to a loop that is mostly system calls.
    """
    try:
        cache = msgspec.msgpack.decode(cache_file.read_bytes(), type=_Cache)
    except (OSError, msgspec.DecodeError, msgspec.ValidationError):
        return False
    if cache.version != CACHE_VERSION or cache.manifest_sha256 != manifest_id or not cache.files:
        return False
    base = str(root)
    try:
        for head, want in cache.dirs.items():
            if _stamp(os.lstat(f"{base}/{head}" if head else base)) != want:
                return False
        return all(_group_matches(base, head, names.split("/"), want) for head, (names, want) in cache.files.items())
    except (OSError, struct.error):
        return False
