"""The toolchain registry's use cases: import, list, show, verify, remove, and resolve-before-use.

Invariants:
    * A toolchain is used only after its tree matched its signed manifest: the stamp fast path when nothing changed
      since the last clean check, a full re-hash otherwise. Any mismatch quarantines it (an audit event says what
      differed) and the caller gets ``ToolchainIntegrityError``: nothing is built with it.
    * The signed manifest is stored as verified and its signatures are checked again against the installed trust
      root whenever it is read back, so a row edited in the database is refused too.
    * Import order: copy the bundle from the media to private local storage, verify the copy, extract it (the
      extraction re-checks every byte and appears atomically), re-hash the tree on disk while stamping it, probe
      every entry point's version, then commit the row. A failure at any step leaves the registry and the disk as
      they were (the new tree is removed).
    * Trees live in ``<toolchains dir>/<name>/<manifest sha256[:16]>-<random>`` (a new directory per import, so the
      tree in use is never touched); replacing a toolchain commits the new row first and deletes the old tree after
      the commit.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import structlog
from sqlalchemy.orm import Session

from sigforge.bundles import (
    PRODUCT,
    STATE_FILE,
    Manifest,
    Provides,
    VerifiedBundle,
    Version,
    extract_verified,
    load_trust,
    local_copy,
    peek_manifest,
    record_accepted,
    verify_bundle,
    verify_stored_manifest,
)
from sigforge.bundles.store import load_root
from sigforge.db.models import Toolchain, ToolchainState
from sigforge.db.repositories import AuditRepository, ToolchainRepository
from sigforge.db.session import Database, after_commit
from sigforge.db.types import utcnow
from sigforge.errors import (
    BundleRejected,
    InvalidInput,
    NotFound,
    ToolchainError,
    ToolchainIntegrityError,
    ToolchainMissing,
)
from sigforge.services.context import Actor
from sigforge.settings import Settings
from sigforge.toolchains.entrypoints import EntryPoint, check_versions
from sigforge.toolchains.integrity import Problem, fast_check, settle, verify_and_stamp
from sigforge.toolchains.runner import ProcessRunner

log = structlog.get_logger(__name__)

PROBLEMS_KEPT = 20  # problems listed in an audit event / error detail (the count says how many there were)
# Which bundle to import for a target (the builders in installer/toolchains/ make them).
BUNDLE_FOR_TARGET = {
    "host-c": "the host-gcc toolchain bundle (installer/toolchains/build.py host-gcc)",
    "linux-arm64": "the zig toolchain bundle (installer/toolchains/build.py zig)",
    "linux-armhf": "the zig toolchain bundle (installer/toolchains/build.py zig)",
    "linux-riscv64": "the zig toolchain bundle (installer/toolchains/build.py zig)",
    "cortex-m4": "the arm-none-eabi toolchain bundle (installer/toolchains/build.py debian --name arm-none-eabi)",
    "cortex-m3": "the arm-none-eabi toolchain bundle (installer/toolchains/build.py debian --name arm-none-eabi)",
    "verilog": "the hdl toolchain bundle (installer/toolchains/build.py debian --name hdl)",
}


@dataclass(frozen=True, slots=True)
class ToolchainView:
    """What the API, CLI and console show about one installed toolchain."""

    name: str
    version: str
    node: str
    state: str
    state_detail: dict[str, Any] | None
    targets: list[str]
    entry_points: list[EntryPoint]
    file_count: int
    total_bytes: int
    manifest_sha256: str
    install_dir: str
    imported_at: datetime
    last_full_check_at: datetime | None
    last_used_at: datetime | None


@dataclass(frozen=True, slots=True)
class ResolvedToolchain:
    """A toolchain that has just passed its integrity check, ready for one build."""

    name: str
    version: str
    root: Path
    entry_points: dict[str, EntryPoint]
    #: This node's writable directory for the toolchain's own caches (zig's global cache, for one). The signed tree
    #: stays read-only; this directory is outside it, never trusted for integrity, and deleted with the toolchain.
    state_dir: Path

    def tool(self, role: str) -> Path:
        """Absolute path of the entry point for ``role``."""
        return self.root / self.entry_points[role].path

    def environment(self) -> dict[str, str]:
        """What the toolchain's programs are told about this node (added to the sandbox's scrubbed environment)."""
        return {"SIGFORGE_TOOLCHAIN_STATE": str(self.state_dir)}


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one verification: which toolchain, whether it passed, and the evidence when it did not."""

    name: str
    ok: bool
    full: bool
    problems: list[Problem]


def _problem_records(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [{"path": p.path, "kind": p.kind, "detail": p.detail} for p in problems[:PROBLEMS_KEPT]]


def _entry_points(manifest: Manifest) -> list[EntryPoint]:
    provides = manifest.provides
    if provides is None:
        return []
    return [EntryPoint(role, ep.path, ep.version, tuple(ep.version_args))
            for role, ep in sorted(provides.entry_points.items())]  # fmt: skip


def _links(manifest: Manifest) -> dict[str, str]:
    return {link.path: link.target for link in manifest.symlinks}


class ToolchainRegistry:
    """The registry of one node (``settings.node_name``); every method opens and commits its own transaction."""

    def __init__(self, db: Database, settings: Settings, runner: ProcessRunner | Callable[[], ProcessRunner]) -> None:
        """``runner`` may be a factory: listing and integrity checks need no processes, only version probes do, so a
        box whose sandbox cannot be built can still show its toolchains."""
        self.db = db
        self.settings = settings
        self._runner = runner
        self.node = settings.node_name
        self.root = settings.toolchains_path

    @property
    def runner(self) -> ProcessRunner:
        if not isinstance(self._runner, ProcessRunner):
            self._runner = self._runner()
        return self._runner

    # ---- reading -------------------------------------------------------------------------------------------------

    def _verified_manifest(self, row: Toolchain) -> Manifest:
        """The row's manifest, its signatures checked again against the trust root installed now."""
        return verify_stored_manifest(row.manifest, row.signatures, load_root(self.settings.trust_path))

    def _view(self, row: Toolchain) -> ToolchainView:
        manifest = peek_stored(row.manifest)
        return ToolchainView(
            name=row.name, version=row.version, node=row.node, state=row.state, state_detail=row.state_detail,
            targets=list(row.targets), entry_points=_entry_points(manifest), file_count=row.file_count,
            total_bytes=row.total_bytes, manifest_sha256=row.manifest_sha256, install_dir=row.install_dir,
            imported_at=row.imported_at, last_full_check_at=row.last_full_check_at, last_used_at=row.last_used_at,
        )  # fmt: skip

    def installed(self) -> list[ToolchainView]:
        with self.db.scope(write=False) as session:
            return [self._view(row) for row in ToolchainRepository(session).all(self.node)]

    def show(self, name: str) -> ToolchainView:
        with self.db.scope(write=False) as session:
            row = ToolchainRepository(session).get(self.node, name)
            if row is None:
                raise NotFound(f"no toolchain named {name!r} on node {self.node!r}", pointer="name")
            return self._view(row)

    # ---- import and removal --------------------------------------------------------------------------------------

    def import_bundle(self, bundle: Path, actor: Actor) -> ToolchainView:
        """Import a signed toolchain bundle (see the module invariants for the order of the steps)."""
        incoming = self.root / ".incoming"
        incoming.mkdir(parents=True, exist_ok=True)
        limits = self.settings.bundles
        with local_copy(bundle, limits, workdir=incoming) as copy:
            claimed = peek_manifest(copy, limits)  # unverified: only to find the installed version it would replace
            with self.db.scope(write=False) as session:
                current = ToolchainRepository(session).get(self.node, claimed.name)
                installed = Version.parse(current.version) if current is not None else None
            try:
                root, state = load_trust(self.settings.trust_path)
            except NotFound as exc:
                raise ToolchainError(
                    f"no trust root is installed in {self.settings.trust_path}: install the one from the install "
                    "media with `sigforge keys install FILE --fingerprint HEX` before importing toolchains"
                ) from exc
            verified = verify_bundle(
                copy, trust_root=root, state=state, now=datetime.now(UTC), expected_product=PRODUCT,
                host_arch=platform.machine(), installed_version=installed, limits=limits, expected_kind="toolchain",
            )  # fmt: skip
            manifest = verified.manifest
            if manifest.provides is None:
                raise BundleRejected("manifest-invalid", f"toolchain bundle {manifest.name} declares no 'provides'")
            # A fresh directory per import: the tree in use (even of this very manifest) is never touched.
            sha = hashlib.sha256(verified.manifest_bytes).hexdigest()
            final = self.root / manifest.name / f"{sha[:16]}-{uuid.uuid4().hex[:8]}"
            final.parent.mkdir(parents=True, exist_ok=True)
            extract_verified(verified, final, limits)
            try:
                self._check_new_tree(final, verified)
                view = self._register(verified, final, actor)
            except BaseException:
                shutil.rmtree(final, ignore_errors=True)
                self._stamps_file(final).unlink(missing_ok=True)
                raise
        record_accepted(self.settings.trust_path / STATE_FILE, manifest)
        log.info("toolchain.imported", name=view.name, version=view.version, files=view.file_count)
        return view

    def _check_new_tree(self, tree: Path, verified: VerifiedBundle) -> None:
        problems = self._stamp(tree, verified)
        problems += check_versions(tree, _entry_points(verified.manifest), self.runner)
        if problems:
            m = verified.manifest
            raise ToolchainIntegrityError(
                f"toolchain {m.name} {m.version} failed its post-import check: {problems[0].path}: "
                f"{problems[0].detail}",
                detail={"problems": _problem_records(problems), "count": len(problems)},
            )

    def _stamp(self, tree: Path, verified: VerifiedBundle) -> list[Problem]:
        settle()  # freshly written files: wait out the racy window so the stamps can be trusted at once
        sha = hashlib.sha256(verified.manifest_bytes).hexdigest()
        stamps = self._stamps_file(tree)
        workers = self.settings.toolchains.hash_workers
        return verify_and_stamp(tree, verified.manifest.files, stamps, sha, links=_links(verified.manifest),
                                workers=workers)  # fmt: skip

    def _stamps_file(self, tree: Path) -> Path:
        """The stamp cache of one installed tree (outside it, so the tree holds exactly the manifest's files)."""
        return self.root / ".stamps" / f"{tree.parent.name}-{tree.name}.msgpack"

    def _state_dir(self, tree: Path) -> Path:
        """The writable per-node state of one installed tree (see ``ResolvedToolchain.state_dir``)."""
        return self.root / ".state" / f"{tree.parent.name}-{tree.name}"

    def _register(self, verified: VerifiedBundle, final: Path, actor: Actor) -> ToolchainView:
        m = verified.manifest
        provides = m.provides
        assert provides is not None  # checked by import_bundle
        sha = hashlib.sha256(verified.manifest_bytes).hexdigest()
        with self.db.scope() as session:
            repo = ToolchainRepository(session)
            old = repo.get(self.node, m.name, for_update=True)
            replaced = (old.version, Path(old.install_dir), self._stamps_file(Path(old.install_dir))) if old else None
            if old is not None:
                repo.remove(old)
            row = repo.add(Toolchain(
                id=str(uuid.uuid4()), node=self.node, name=m.name, version=m.version, manifest=verified.manifest_bytes,
                signatures=verified.signature_bytes, manifest_sha256=sha, targets=list(provides.targets),
                install_dir=str(final), file_count=len(m.files), total_bytes=m.total_size,
                state=ToolchainState.VERIFIED, last_full_check_at=utcnow(),
            ))  # fmt: skip
            self._audit(session, actor, "toolchain.imported", m.name, version=m.version, manifest_sha256=sha,
                        signed_by=sorted(verified.signed_by), replaced=replaced[0] if replaced else None)  # fmt: skip
            if replaced is not None and replaced[1] != final:
                old_dir, old_stamps, old_state = replaced[1], replaced[2], self._state_dir(replaced[1])

                def delete_old() -> None:
                    shutil.rmtree(old_dir, ignore_errors=True)
                    shutil.rmtree(old_state, ignore_errors=True)
                    old_stamps.unlink(missing_ok=True)

                after_commit(session, delete_old)
            return self._view(row)

    def remove(self, name: str, actor: Actor) -> None:
        """Unregister a toolchain and delete its files (after the commit)."""
        with self.db.scope() as session:
            repo = ToolchainRepository(session)
            row = repo.get(self.node, name, for_update=True)
            if row is None:
                raise NotFound(f"no toolchain named {name!r} on node {self.node!r}", pointer="name")
            tree = Path(row.install_dir)
            stamps, state = self._stamps_file(tree), self._state_dir(tree)
            repo.remove(row)
            self._audit(session, actor, "toolchain.removed", name, version=row.version)

            def delete_files() -> None:
                shutil.rmtree(tree, ignore_errors=True)
                shutil.rmtree(state, ignore_errors=True)
                stamps.unlink(missing_ok=True)

            after_commit(session, delete_files)

    # ---- verification --------------------------------------------------------------------------------------------

    def verify(self, name: str | None, actor: Actor, *, full: bool = True) -> list[CheckResult]:
        """Check one toolchain (or all of this node's when ``name`` is None); quarantine any that fails."""
        with self.db.scope(write=False) as session:
            repo = ToolchainRepository(session)
            if name is None:
                names = [row.name for row in repo.all(self.node)]
            else:
                if repo.get(self.node, name) is None:
                    raise NotFound(f"no toolchain named {name!r} on node {self.node!r}", pointer="name")
                names = [name]
        return [self._check(n, actor, full=full, probe_versions=full) for n in names]

    def _check(self, name: str, actor: Actor, *, full: bool, probe_versions: bool = False) -> CheckResult:
        result, _ = self._checked_manifest(name, actor, full=full, probe_versions=probe_versions)
        return result

    def _checked_manifest(
        self, name: str, actor: Actor, *, full: bool, probe_versions: bool = False
    ) -> tuple[CheckResult, Manifest | None]:
        with self.db.scope(write=False) as session:
            row = ToolchainRepository(session).get(self.node, name)
            if row is None:
                raise NotFound(f"no toolchain named {name!r} on node {self.node!r}", pointer="name")
            if row.state == ToolchainState.QUARANTINED:
                problem = Problem(".", "quarantined", "quarantined by an earlier check; import a good bundle again")
                return CheckResult(name, False, False, [problem]), None
            row_id, tree, sha = row.id, Path(row.install_dir), row.manifest_sha256
            try:
                manifest = self._verified_manifest(row)
            except (BundleRejected, NotFound, InvalidInput) as exc:
                # The stored manifest no longer verifies against the trust root (edited row, rotated keys): the
                # files cannot be vouched for, whatever they hold.
                problems = [Problem(".", "manifest", f"the stored manifest no longer verifies: {exc}")]
                manifest = None
        if manifest is None:
            self._quarantine(row_id, name, tree, actor, problems)
            return CheckResult(name, False, True, problems), None
        stamps = self._stamps_file(tree)
        did_full = full or not fast_check(tree, stamps, sha)
        problems = []
        if did_full:
            problems = verify_and_stamp(tree, manifest.files, stamps, sha, links=_links(manifest),
                                        workers=self.settings.toolchains.hash_workers)  # fmt: skip
        if not problems and probe_versions:
            problems = check_versions(tree, _entry_points(manifest), self.runner)
        if problems:
            self._quarantine(row_id, name, tree, actor, problems)
            return CheckResult(name, False, did_full, problems), None
        with self.db.scope() as session:
            ToolchainRepository(session).checked(row_id, full=did_full)
            if full:
                self._audit(session, actor, "toolchain.verified", name, full=True)
        return CheckResult(name, True, did_full, []), manifest

    def _quarantine(self, row_id: str, name: str, tree: Path, actor: Actor, problems: Sequence[Problem]) -> None:
        records = _problem_records(problems)
        detail: dict[str, Any] = {"problems": records, "count": len(problems)}
        with self.db.scope() as session:
            ToolchainRepository(session).set_state(row_id, ToolchainState.QUARANTINED, detail)
            self._audit(session, actor, "toolchain.quarantined", name, **detail)
        # What the toolchain cached on this node was made by files that no longer match: it goes too.
        shutil.rmtree(self._state_dir(tree), ignore_errors=True)
        log.error("toolchain.quarantined", name=name, problems=records[:3], count=len(problems))

    def resolve(self, target: str, actor: Actor, *, role: str = "cc") -> ResolvedToolchain:
        """The verified toolchain that provides ``role`` for ``target`` on this node, checked just now.

        Several toolchains may serve one target with different tools (zig compiles for linux-arm64, qemu runs it;
        Icarus simulates Verilog, Yosys synthesises it): only those declaring an entry point for ``role`` count.

        Raises:
            ToolchainMissing: no toolchain for the target and role is installed (the message names the bundle to
                import), or the only one is quarantined.
            ToolchainIntegrityError: the toolchain's files differ from its manifest (it is quarantined now).
        """
        with self.db.scope(write=False) as session:
            rows = [r for r in ToolchainRepository(session).all(self.node)
                    if target in r.targets and _provides_role(r.manifest, role)]  # fmt: skip
        usable = [r for r in rows if r.state == ToolchainState.VERIFIED]
        if not usable:
            hint = BUNDLE_FOR_TARGET.get(target, f"a toolchain bundle that provides {target!r}")
            if rows:
                raise ToolchainMissing(
                    f"the toolchain for target {target!r} ({rows[0].name}) is quarantined; "
                    f"re-import a good bundle ({hint}) with `sigforge toolchain import`",
                    detail={"target": target, "toolchain": rows[0].name, "state": rows[0].state},
                )
            what = f"no toolchain for target {target!r}" + ("" if role == "cc" else f" with a {role!r} entry point")
            raise ToolchainMissing(
                f"{what} is installed on node {self.node!r}; import {hint} with `sigforge toolchain import BUNDLE`",
                detail={"target": target, "role": role, "bundle": hint},
            )
        row = usable[0]
        result, manifest = self._checked_manifest(row.name, actor, full=False)
        if manifest is None:
            first = result.problems[0]
            raise ToolchainIntegrityError(
                f"toolchain {row.name} {row.version} failed its integrity check ({first.path}: {first.detail}); "
                f"it is quarantined and nothing was built with it",
                detail={"toolchain": row.name, "problems": _problem_records(result.problems)},
            )
        tree = Path(row.install_dir)
        state = self._state_dir(tree)
        state.mkdir(parents=True, exist_ok=True)
        return ResolvedToolchain(row.name, row.version, tree, {ep.role: ep for ep in _entry_points(manifest)}, state)

    def _audit(self, session: Session, actor: Actor, action: str, name: str, **detail: Any) -> None:
        AuditRepository(session).record(
            actor=actor.name, action=action, subject_type="toolchain", subject_id=f"{self.node}/{name}"[:64],
            request_id=actor.request_id, job_id=actor.job_id, detail={k: v for k, v in detail.items() if v is not None},
        )  # fmt: skip


class _ProvidesOnly(msgspec.Struct):
    """The ``provides`` of a stored manifest and nothing else: decoding skips the file list (22,000 entries for
    zig) instead of building an object per file, on every build's toolchain lookup."""

    provides: Provides | None = None


def _provides_role(manifest_bytes: bytes, role: str) -> bool:
    """Whether a stored manifest declares an entry point for ``role`` (a selection hint only: the chosen toolchain's
    manifest is verified against the trust root before use)."""
    try:
        provides = msgspec.json.decode(manifest_bytes, type=_ProvidesOnly).provides
    except msgspec.DecodeError:  # a damaged row: let the integrity check find and quarantine it
        return True
    return provides is not None and role in provides.entry_points


def peek_stored(manifest_bytes: bytes) -> Manifest:
    """Decode a stored manifest for display only (no signature check: listing must work even with a broken row)."""
    return msgspec.json.decode(manifest_bytes, type=Manifest)
