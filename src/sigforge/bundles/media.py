"""Install media on disk: the files `installer/build_media.py` writes, and laying them out on a USB stick.

A media directory holds ``install.sh``, ``README-OPERATOR.md``, ``root.json``, ``FINGERPRINT.txt``, the signed
bundle ``sigforge-<version>.media`` (kind ``media``) and ``SHA256SUMS`` (``sha256sum -c`` format, one line per
other file, sorted by name). ``write_media`` copies such a directory to a destination (a stick's mount point),
hashing every byte it copies and checking it against the source's ``SHA256SUMS``; with a part size, the bundle is
written as ``sigforge-<version>.media.part00``, ``.part01``, … (each at most that many bytes) and ``SHA256SUMS``
lists the parts instead of the whole. ``install.sh`` copies the parts to local storage, checks them with
``sha256sum -c`` and joins them (``cat`` in name order) before anything else. Pure file work: no processes.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterable
from pathlib import Path

from sigforge.errors import IntegrityError, InvalidInput

SUMS_FILE = "SHA256SUMS"
MEDIA_SUFFIX = ".media"
PART_INFIX = ".part"
MAX_PARTS = 100  # part numbers are two digits
_CHUNK = 1024**2
_SIZE = re.compile(r"^\s*([0-9]+)\s*([kmgt]?)(i?b?)\s*$", re.IGNORECASE)
_SUM_LINE = re.compile(r"^([0-9a-f]{64}) [ *]([^/\0]+)$")


def parse_size(text: str) -> int:
    """``4G``, ``700M``, ``1024k`` or a byte count; the suffixes are binary (K = 1024).

    Raises:
        InvalidInput: not a size, or zero.
    """
    match = _SIZE.match(text)
    if not match:
        raise InvalidInput(f"not a size: {text!r} (e.g. 4G, 700M, 1048576)")
    value: int = int(match.group(1)) * 1024 ** " kmgt".index(match.group(2).lower() or " ")
    if value <= 0:
        raise InvalidInput("a part size must be more than 0 bytes")
    return value


def format_sums(sums: dict[str, str]) -> bytes:
    return "".join(f"{digest}  {name}\n" for name, digest in sorted(sums.items())).encode()


def parse_sums(data: bytes) -> dict[str, str]:
    """``name -> sha256`` from a ``SHA256SUMS`` file; plain names only (no directories).

    Raises:
        IntegrityError: a malformed line or a name listed twice.
    """
    sums: dict[str, str] = {}
    for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), 1):
        match = _SUM_LINE.match(line)
        if not match or match.group(2) in (".", ".."):
            raise IntegrityError(f"{SUMS_FILE} line {number} is not '<sha256>  <file name>': {line[:100]!r}")
        if match.group(2) in sums:
            raise IntegrityError(f"{SUMS_FILE} lists {match.group(2)!r} twice")
        sums[match.group(2)] = match.group(1)
    return sums


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_sums(directory: Path, names: Iterable[str]) -> dict[str, str]:
    """Hash ``names`` in ``directory`` and write its ``SHA256SUMS``; return the sums."""
    sums = {name: sha256_file(directory / name) for name in names}
    (directory / SUMS_FILE).write_bytes(format_sums(sums))
    return sums


def _durable(fh: object) -> None:
    fileno = getattr(fh, "fileno", None)
    if fileno is not None:
        os.fsync(fileno())


def write_media(source: Path, dest: Path, part_size: int | None = None) -> dict[str, str]:
    """Copy the media directory ``source`` into ``dest`` (created if missing); return the new ``SHA256SUMS``.

    Every file listed in the source's ``SHA256SUMS`` is copied while being hashed, and refused if its hash differs
    (``IntegrityError``; what was written is removed). The source must hold exactly one ``*.media`` bundle; with
    ``part_size`` that bundle is split into ``NAME.partNN`` files. Files already in ``dest`` with the names about to
    be written are replaced; nothing else in ``dest`` is touched, except stale parts of the same bundle.

    Raises:
        InvalidInput: ``source`` is not a media directory, or the bundle would need more than 100 parts.
        IntegrityError: a source file does not match its ``SHA256SUMS`` line, or a listed file is missing.
    """
    sums_path = source / SUMS_FILE
    if not sums_path.is_file():
        raise InvalidInput(
            f"{source} is not a media directory (no {SUMS_FILE}); build one with installer/build_media.py"
        )
    listed = parse_sums(sums_path.read_bytes())
    bundles = [name for name in listed if name.endswith(MEDIA_SUFFIX)]
    if len(bundles) != 1:
        raise InvalidInput(f"{source} must hold exactly one *{MEDIA_SUFFIX} bundle; {SUMS_FILE} lists {bundles}")
    bundle = bundles[0]
    if part_size is not None and (source / bundle).stat().st_size > part_size * MAX_PARTS:
        raise InvalidInput(f"{bundle} would need more than {MAX_PARTS} parts of {part_size} bytes")
    dest.mkdir(parents=True, exist_ok=True)
    stale = [p for p in dest.iterdir() if p.name == bundle or p.name.startswith(bundle + PART_INFIX)]
    for path in stale:
        path.unlink()
    written: dict[str, str] = {}
    try:
        for name, expected in sorted(listed.items()):
            src = source / name
            if not src.is_file():
                raise IntegrityError(f"{name} is listed in {SUMS_FILE} but missing from {source}")
            if name == bundle and part_size is not None:
                actual = _copy_parts(src, dest, name, part_size, written)
            else:
                actual = _copy_one(src, dest / name, written)
            if actual != expected:
                raise IntegrityError(f"{src} does not match {SUMS_FILE} (sha256 {actual}, expected {expected})")
    except BaseException:
        for name in written:
            (dest / name).unlink(missing_ok=True)
        raise
    (dest / SUMS_FILE).write_bytes(format_sums(written))
    return written


def _copy_one(src: Path, dst: Path, written: dict[str, str]) -> str:
    digest = hashlib.sha256()
    written[dst.name] = ""
    with src.open("rb") as fin, dst.open("wb") as fout:
        while chunk := fin.read(_CHUNK):
            digest.update(chunk)
            fout.write(chunk)
        fout.flush()
        _durable(fout)
    with contextlib.suppress(OSError):  # FAT sticks have no modes; the README says `sh install.sh` anyway
        dst.chmod(0o755 if src.stat().st_mode & 0o100 else 0o644)
    written[dst.name] = digest.hexdigest()
    return written[dst.name]


def _copy_parts(src: Path, dest: Path, name: str, part_size: int, written: dict[str, str]) -> str:
    whole = hashlib.sha256()
    with src.open("rb") as fin:
        number = 0
        while True:
            part_name = f"{name}{PART_INFIX}{number:02d}"
            remaining = part_size
            digest = hashlib.sha256()
            chunk = fin.read(min(_CHUNK, remaining))
            if not chunk and number > 0:
                break
            written[part_name] = ""
            with (dest / part_name).open("wb") as fout:
                while chunk:
                    whole.update(chunk)
                    digest.update(chunk)
                    fout.write(chunk)
                    remaining -= len(chunk)
                    chunk = fin.read(min(_CHUNK, remaining)) if remaining else b""
                fout.flush()
                _durable(fout)
            written[part_name] = digest.hexdigest()
            number += 1
    return whole.hexdigest()
