"""The toolchain registry: import from signed bundles, resolve-before-use, quarantine, verify, remove.

Uses small synthetic toolchains (a shell script as ``cc``) so every mechanism is exercised in milliseconds; the real
compiler path (host-gcc built by the builder, a tampered ``cc1`` failing a job) is in ``tests/services``.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from sqlalchemy import update

from sigforge.bundles.keys import SigningKey
from sigforge.db.models import Toolchain
from sigforge.db.repositories import AuditRepository
from sigforge.db.session import Database
from sigforge.errors import BundleRejected, NotFound, ToolchainIntegrityError, ToolchainMissing
from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.settings import Settings, load_settings
from sigforge.toolchains.integrity import settle
from sigforge.toolchains.runner import ProcessRunner
from toolchainkit import install_trust, make_bundle, new_keys
from toolchainkit import tool as _tool

ACTOR = Actor("test")


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return new_keys()


@pytest.fixture
def settings(tmp_path: Path, keys: dict[str, SigningKey]) -> Settings:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data"), "SIGFORGE_TOOLCHAINS_NODE": "node-a"})
    install_trust(settings.trust_path, keys)
    return settings


@pytest.fixture
def registry(sqlite_db: Database, settings: Settings) -> ToolchainRegistry:
    return ToolchainRegistry(sqlite_db, settings, ProcessRunner())


def _actions(db: Database) -> list[str]:
    with db.scope(write=False) as session:
        return [e.action for e in reversed(AuditRepository(session).recent(50))]


def _trees(settings: Settings) -> list[Path]:
    base = settings.toolchains_path / "tinycc"
    return sorted(p for p in base.iterdir()) if base.exists() else []


def test_import_list_show_and_resolve(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    view = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    assert (view.name, view.version, view.state, view.targets, view.node) == ("tinycc", "1.0.0", "verified",
                                                                              ["host-c"], "node-a")  # fmt: skip
    assert view.file_count == 3 and view.last_full_check_at is not None
    assert [(e.role, e.path, e.version) for e in view.entry_points] == [("cc", "bin/cc", "tinycc 1.0.0")]
    assert [v.name for v in registry.installed()] == ["tinycc"]
    assert registry.show("tinycc").manifest_sha256 == view.manifest_sha256
    resolved = registry.resolve("host-c", ACTOR)
    assert resolved.tool("cc").read_bytes() == _tool("1.0.0")
    assert Path(view.install_dir) == resolved.root and resolved.root.parent.parent == settings.toolchains_path
    assert "toolchain.imported" in _actions(registry.db)


def test_reimport_and_upgrade_replace_the_tree(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    first = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    again = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    newer = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], version="1.1.0"), ACTOR)
    assert newer.version == "1.1.0" and len({first.install_dir, again.install_dir, newer.install_dir}) == 3
    assert _trees(settings) == [Path(newer.install_dir)]  # the replaced trees were deleted after the commit


def test_rollback_is_rejected_and_the_installed_toolchain_is_untouched(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    installed = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], version="2.0.0"), ACTOR)
    with pytest.raises(BundleRejected) as caught:
        registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], version="1.9.9"), ACTOR)
    assert caught.value.reason == "rollback"
    assert registry.show("tinycc").install_dir == installed.install_dir
    assert _trees(settings) == [Path(installed.install_dir)]
    assert registry.resolve("host-c", ACTOR).version == "2.0.0"


def test_a_bundle_signed_by_another_role_installs_nothing(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    with pytest.raises(BundleRejected) as caught:
        registry.import_bundle(make_bundle(tmp_path, keys["release"]), ACTOR)
    assert caught.value.reason == "unknown-key"
    assert registry.installed() == [] and _trees(settings) == []
    assert list((settings.toolchains_path / ".incoming").iterdir()) == []  # the local copy is gone too


def test_an_entry_point_reporting_another_version_is_refused_at_import(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    bundle = make_bundle(tmp_path, keys["toolchain"], reports="6.6.6")
    with pytest.raises(ToolchainIntegrityError, match=r"reports 'tinycc 6\.6\.6'"):
        registry.import_bundle(bundle, ACTOR)
    assert registry.installed() == [] and _trees(settings) == []


def test_one_changed_byte_quarantines_and_refuses_use(
    registry: ToolchainRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    view = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    lib = Path(view.install_dir) / "lib/libtiny.a"
    data = bytearray(lib.read_bytes())
    data[100] ^= 0xFF
    lib.write_bytes(bytes(data))
    with pytest.raises(ToolchainIntegrityError, match=r"lib/libtiny\.a") as caught:
        registry.resolve("host-c", ACTOR)
    assert "quarantined" in caught.value.message
    shown = registry.show("tinycc")
    assert shown.state == "quarantined"
    assert shown.state_detail is not None and shown.state_detail["problems"][0]["kind"] == "hash"
    with registry.db.scope(write=False) as session:
        event = AuditRepository(session).recent(1, action="toolchain.quarantined")[0]
    assert event.subject_id == "node-a/tinycc" and event.detail["problems"][0]["path"] == "lib/libtiny.a"
    with pytest.raises(ToolchainMissing, match="quarantined"):
        registry.resolve("host-c", ACTOR)  # even after the byte is restored, only a re-import clears quarantine


def test_an_added_file_or_an_edited_database_row_also_quarantines(
    registry: ToolchainRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    view = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    (Path(view.install_dir) / "include/evil.h").write_text("#define int long\n")
    assert [r.ok for r in registry.verify("tinycc", ACTOR)] == [False]
    assert registry.show("tinycc").state_detail["problems"][0]["kind"] == "extra"  # type: ignore[index]

    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    row_id = _row_id(registry)
    with registry.db.scope() as session:  # someone with database access swaps a digest in the stored manifest
        row = session.get(Toolchain, row_id)
        assert row is not None
        forged = row.manifest.replace(hashlib.sha256(b"int t;\n").hexdigest().encode(), b"0" * 64)
        session.execute(update(Toolchain).where(Toolchain.id == row.id).values(manifest=forged))
    with pytest.raises(ToolchainIntegrityError, match="no longer verifies"):
        registry.resolve("host-c", ACTOR)


def _row_id(registry: ToolchainRegistry) -> str:
    with registry.db.scope(write=False) as session:
        row = session.query(Toolchain).filter_by(node=registry.node, name="tinycc").one()
        return row.id


def test_use_takes_the_fast_path_until_something_changes(
    registry: ToolchainRegistry, keys: dict[str, SigningKey], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    import sigforge.services.toolchains as module

    rehashes: list[Path] = []
    real = module.verify_and_stamp
    monkeypatch.setattr(module, "verify_and_stamp", lambda tree, *a, **k: rehashes.append(tree) or real(tree, *a, **k))
    registry.resolve("host-c", ACTOR)
    registry.resolve("host-c", ACTOR)
    assert rehashes == []
    os.utime(Path(view.install_dir) / "include/tiny.h")  # same bytes, new stamp: re-hashed once, then fast again
    settle()  # (a stamp younger than the racy window would be re-hashed again, by design)
    registry.resolve("host-c", ACTOR)
    registry.resolve("host-c", ACTOR)
    assert rehashes == [Path(view.install_dir)]
    assert registry.show("tinycc").state == "verified"


def test_each_tree_has_a_node_local_state_directory_that_goes_with_it(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    first = registry.resolve("host-c", ACTOR)
    assert first.state_dir.is_dir() and not first.state_dir.is_relative_to(first.root)  # the signed tree stays exact
    assert first.environment() == {"SIGFORGE_TOOLCHAIN_STATE": str(first.state_dir)}
    (first.state_dir / "cache").write_text("made by this tree")
    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], version="1.1.0"), ACTOR)
    second = registry.resolve("host-c", ACTOR)
    assert second.state_dir != first.state_dir and not first.state_dir.exists()  # replaced with its tree
    (second.state_dir / "cache").write_text("made by this tree")
    lib = second.root / "lib/libtiny.a"
    data = bytearray(lib.read_bytes())
    data[-1] ^= 0xFF
    lib.write_bytes(bytes(data))
    with pytest.raises(ToolchainIntegrityError):
        registry.resolve("host-c", ACTOR)
    assert not second.state_dir.exists()  # a quarantined tree's caches are not trusted either
    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], version="1.2.0"), ACTOR)
    third = registry.resolve("host-c", ACTOR)
    registry.remove("tinycc", ACTOR)
    assert not third.state_dir.exists()


def test_verify_all_records_the_full_check_and_remove_deletes(
    registry: ToolchainRegistry, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    view = registry.import_bundle(make_bundle(tmp_path, keys["toolchain"]), ACTOR)
    before = registry.show("tinycc").last_full_check_at
    [result] = registry.verify(None, ACTOR)
    assert result.ok and result.full
    after = registry.show("tinycc").last_full_check_at
    assert before is not None and after is not None and after >= before
    registry.remove("tinycc", ACTOR)
    assert registry.installed() == [] and not Path(view.install_dir).exists()
    with pytest.raises(NotFound):
        registry.show("tinycc")
    assert _actions(registry.db)[-3:] == ["toolchain.imported", "toolchain.verified", "toolchain.removed"]


def test_resolve_picks_the_toolchain_that_provides_the_role(
    registry: ToolchainRegistry, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    # Two toolchains serve host-c: one runs programs (like qemu for linux-arm64), one compiles them (like zig).
    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], name="aemu", role="emulator"), ACTOR)
    registry.import_bundle(make_bundle(tmp_path, keys["toolchain"], name="tinycc"), ACTOR)
    assert registry.resolve("host-c", ACTOR).name == "tinycc"
    assert registry.resolve("host-c", ACTOR, role="emulator").name == "aemu"
    with pytest.raises(ToolchainMissing, match="with a 'synthesiser' entry point"):
        registry.resolve("host-c", ACTOR, role="synthesiser")


def test_no_toolchain_for_a_target_names_the_bundle_to_import(registry: ToolchainRegistry) -> None:
    with pytest.raises(ToolchainMissing, match="host-gcc toolchain bundle"):
        registry.resolve("host-c", ACTOR)


def test_registries_of_two_nodes_do_not_see_each_other(
    sqlite_db: Database, settings: Settings, keys: dict[str, SigningKey], tmp_path: Path
) -> None:
    ToolchainRegistry(sqlite_db, settings, ProcessRunner()).import_bundle(
        make_bundle(tmp_path, keys["toolchain"]), ACTOR
    )
    other = load_settings(env={"SIGFORGE_DATA_DIR": str(settings.data_path), "SIGFORGE_TOOLCHAINS_NODE": "node-b"})
    with pytest.raises(ToolchainMissing):
        ToolchainRegistry(sqlite_db, other, ProcessRunner()).resolve("host-c", ACTOR)
