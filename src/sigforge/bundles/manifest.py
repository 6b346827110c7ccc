"""The bundle manifest: what a bundle is, for whom, until when, and every file it holds.

Invariants (checked by ``decode_manifest`` + ``validate_manifest``; any breach is a ``BundleRejected``):
- The manifest's bytes in the archive are exactly its canonical encoding (``canonical_bytes``: msgspec JSON, keys
  sorted, no whitespace, every field present), so the signatures cover one unambiguous byte string.
- Decoding is strict: unknown fields, wrong types or an unknown ``schema`` are refused; an unknown field that looks
  like key or root material is refused as ``own-trust`` (a bundle never brings its own trust).
- Every path is relative, ``/``-separated, with no empty, ``.`` or ``..`` component, and does not pass through a
  declared symbolic link; entries are sorted by path and unique; modes are plain permission bits, never group- or
  world-writable; a symbolic link's target stays inside the bundle without passing through another link.
- ``provides`` (toolchains only) names the targets and the entry points; each entry point is an executable file
  listed in ``files``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Literal

import msgspec

from sigforge.bundles.reasons import Reason, reject
from sigforge.bundles.version import Version

SCHEMA_VERSION = 1
Kind = Literal["toolchain", "release", "media"]
KINDS: tuple[Kind, ...] = ("toolchain", "release", "media")
ROLES = (
    "cc", "cxx", "as", "ld", "ar", "nm", "size", "objcopy", "objdump", "strip", "make",
    "emulator", "simulator", "synthesiser",
)  # fmt: skip
# A role, optionally qualified when a toolchain has several tools of one kind: ``emulator.aarch64``,
# ``simulator.runtime`` (Icarus's vvp beside iverilog).
EntryRole = Annotated[str, msgspec.Meta(pattern=rf"^({'|'.join(ROLES)})(\.[a-z0-9][a-z0-9_-]{{0,31}})?$")]
VersionArg = Annotated[str, msgspec.Meta(pattern=r"^-{1,2}[A-Za-z][A-Za-z0-9-]{0,30}$")]

Sha256Hex = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]
Name = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._+-]{0,63}$")]
Arch = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9_]{1,32}$")]
TargetName = Annotated[str, msgspec.Meta(pattern=r"^[a-z0-9][a-z0-9._+-]{0,63}$")]
RelPath = Annotated[str, msgspec.Meta(min_length=1, max_length=1024)]
UtcTime = Annotated[datetime, msgspec.Meta(tz=True)]
ANY_ARCH = "any"
# Unknown field names that smell of trust material: refused as ``own-trust`` rather than as a plain schema error.
_TRUST_WORDS = ("key", "root", "trust", "sign", "role", "cert")
_TRUST_BASENAMES = frozenset({"root.json", "trust.json", "signatures.json"})
# Key files by name. Certificates (.pem/.crt CA bundles such as certifi's) are not keys this box could be made to
# trust, and PEM-armoured keys under any name are caught by the archive's content sniff.
_TRUST_SUFFIXES = (".pub", ".key")
_UNKNOWN_FIELD = re.compile(r"unknown field `([^`]*)`")


class FileEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """One regular file: its path inside the bundle, size in bytes, permission bits and SHA-256 (lower-case hex)."""

    path: RelPath
    size: Annotated[int, msgspec.Meta(ge=0)]
    mode: Annotated[int, msgspec.Meta(ge=0)]
    sha256: Sha256Hex


class SymlinkEntry(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A declared symbolic link; ``target`` is relative to the link's directory and must stay inside the bundle."""

    path: RelPath
    target: RelPath


class EntryPoint(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """A program a toolchain provides: its relative path and the version string it is expected to report.

    ``version_args`` is how to ask (``--version`` for most tools, ``-V`` for Icarus and Yosys): plain option words
    only, so a manifest cannot make the registry run a tool with arbitrary arguments.
    """

    path: RelPath
    version: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    version_args: Annotated[tuple[VersionArg, ...], msgspec.Meta(min_length=1, max_length=4)] = ("--version",)


class Provides(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """What a toolchain bundle offers the toolchain registry: the targets it builds or runs, and its entry points."""

    targets: Annotated[tuple[TargetName, ...], msgspec.Meta(min_length=1)]
    entry_points: Annotated[dict[EntryRole, EntryPoint], msgspec.Meta(min_length=1)]


class Manifest(msgspec.Struct, forbid_unknown_fields=True, frozen=True, kw_only=True):
    """The signed description of one bundle."""

    schema: Literal[1] = 1  # SCHEMA_VERSION
    kind: Kind
    name: Name
    version: str
    product: Name
    host_arch: Arch  # the machine (``platform.machine()``) it runs on, or "any"
    created: UtcTime
    expires: UtcTime
    min_installed_version: str | None = None
    files: Annotated[tuple[FileEntry, ...], msgspec.Meta(min_length=1)]
    symlinks: tuple[SymlinkEntry, ...] = ()
    provides: Provides | None = None

    @property
    def parsed_version(self) -> Version:
        return Version.parse(self.version)

    @property
    def total_size(self) -> int:
        return sum(f.size for f in self.files)

    def file(self, path: str) -> FileEntry | None:
        return next((f for f in self.files if f.path == path), None)


def canonical_bytes(value: msgspec.Struct) -> bytes:
    """The one byte string that is signed: compact JSON, keys sorted, every field present."""
    return msgspec.json.encode(value, order="sorted")


def decode_manifest(data: bytes, *, validate: bool = True) -> Manifest:
    """Decode manifest bytes, which must already be canonical; then (by default) ``validate_manifest``.

    Verification decodes first (to learn the kind, hence the signing role), checks the signatures, and validates
    only then: semantic checks run on content the signers vouched for.

    Raises:
        BundleRejected: ``own-trust``, ``manifest-invalid`` or any reason of ``validate_manifest``.
    """
    try:
        manifest = msgspec.json.decode(data, type=Manifest, strict=True)
    except msgspec.ValidationError as exc:
        unknown = _UNKNOWN_FIELD.search(str(exc))
        if unknown and any(word in unknown.group(1).lower() for word in _TRUST_WORDS):
            reject(Reason.OWN_TRUST, f"the manifest carries trust material ({unknown.group(1)!r}); bundles never do")
        reject(Reason.MANIFEST_INVALID, f"not a valid manifest: {exc}")
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        reject(Reason.MANIFEST_INVALID, f"the manifest is not JSON: {exc}")
    if canonical_bytes(manifest) != data:
        reject(Reason.MANIFEST_INVALID, "the manifest is not in canonical form (sorted keys, compact, all fields)")
    if validate:
        validate_manifest(manifest)
    return manifest


def check_path(path: str) -> None:
    """Refuse a path that is absolute, has ``..``/``.``/empty components, a backslash or a control character."""
    if path.startswith("/") or any(part == ".." for part in path.split("/")):
        reject(Reason.PATH_TRAVERSAL, f"path leaves the bundle: {path!r}", path=path)
    if any(part in ("", ".") for part in path.split("/")) or "\\" in path or any(ord(c) < 0x20 for c in path):
        reject(Reason.PATH_TRAVERSAL, f"path is not a plain relative path: {path!r}", path=path)


def _check_link_target(link: SymlinkEntry, links: set[str]) -> None:
    if link.target.startswith("/"):
        reject(Reason.LINK_OUTSIDE, f"link {link.path!r} points to an absolute path", path=link.path)
    where = link.path.split("/")[:-1]
    parts = [p for p in link.target.split("/") if p not in ("", ".")]
    for i, part in enumerate(parts):
        if part == "..":
            if not where:
                reject(Reason.LINK_OUTSIDE, f"link {link.path!r} -> {link.target!r} leaves the bundle", path=link.path)
            where.pop()
            continue
        where.append(part)
        # Through a real directory, lexical resolution is the real one; through another link it may not be.
        if i < len(parts) - 1 and "/".join(where) in links:
            reject(Reason.LINK_OUTSIDE, f"link {link.path!r} resolves through another link", path=link.path)


def validate_manifest(m: Manifest) -> None:  # noqa: PLR0912 - a checklist, one branch per rule
    """The semantic checks that the type system cannot express (see the module docstring).

    Raises:
        BundleRejected: with the precise reason.
    """
    for label, text in (("version", m.version), ("min_installed_version", m.min_installed_version)):
        if text is not None and not Version.is_valid(text):
            reject(Reason.MANIFEST_INVALID, f"{label} is not MAJOR.MINOR.PATCH: {text!r}")
    if m.expires <= m.created:
        reject(Reason.MANIFEST_INVALID, "the manifest expires before it was created")
    paths = [f.path for f in m.files] + [s.path for s in m.symlinks]
    for path in paths:
        check_path(path)
        base = path.rsplit("/", 1)[-1].lower()
        if base in _TRUST_BASENAMES or base.endswith(_TRUST_SUFFIXES):
            reject(Reason.OWN_TRUST, f"the bundle ships key or trust material: {path!r}", path=path)
    if len(set(paths)) != len(paths):
        dup = next(p for p in paths if paths.count(p) > 1)
        reject(Reason.DUPLICATE_ENTRY, f"the manifest lists {dup!r} twice", path=dup)
    for entries in (m.files, m.symlinks):
        if [e.path for e in entries] != sorted(e.path for e in entries):
            reject(Reason.MANIFEST_INVALID, "manifest entries are not sorted by path")
    links = {s.path for s in m.symlinks}
    taken = set(paths)
    for path in paths:
        parts = path.split("/")
        for i in range(1, len(parts)):
            prefix = "/".join(parts[:i])
            if prefix in links:
                reject(Reason.PATH_TRAVERSAL, f"{path!r} passes through the link {prefix!r}", path=path)
            if prefix in taken:
                reject(Reason.MANIFEST_INVALID, f"{prefix!r} is both a file and a directory", path=path)
    for f in m.files:
        if f.mode & ~0o777 or f.mode & 0o022:
            reject(Reason.BAD_MODE, f"{f.path!r} has mode {f.mode:o}: only rwx bits, never group/world-writable")
    for link in m.symlinks:
        _check_link_target(link, links)
    if m.provides is not None:
        if m.kind != "toolchain":
            reject(Reason.MANIFEST_INVALID, f"only toolchain bundles declare 'provides' (this is a {m.kind})")
        if len(set(m.provides.targets)) != len(m.provides.targets):
            reject(Reason.MANIFEST_INVALID, "provides.targets lists a target twice")
        files = {f.path: f for f in m.files}
        for role, entry in sorted(m.provides.entry_points.items()):
            check_path(entry.path)
            listed = files.get(entry.path)
            if listed is None:
                reject(Reason.MANIFEST_INVALID, f"entry point {role} -> {entry.path!r} is not a file of the bundle")
            if not listed.mode & 0o100:
                reject(Reason.MANIFEST_INVALID, f"entry point {role} -> {entry.path!r} is not executable")
