"""The toolchain tree checks: the full re-hash finds every kind of damage; the fast path never says "fine" wrongly."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from sigforge.toolchains.integrity import ExpectedFile, fast_check, full_check, settle, sha256_file, verify_and_stamp


def _tree(root: Path) -> list[ExpectedFile]:
    contents = {
        "bin/cc": (b"#!/bin/sh\nexit 0\n", 0o755),
        "lib/libfoo.a": (os.urandom(300_000), 0o644),
        "include/sub/foo.h": (b"int foo(void);\n", 0o644),
        "README": (b"", 0o644),
    }
    files = []
    for rel, (data, mode) in contents.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)
        files.append(ExpectedFile(rel, len(data), mode, hashlib.sha256(data).hexdigest()))
    return files


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, list[ExpectedFile], Path]:
    root = tmp_path / "tc"
    files = _tree(root)
    cache = tmp_path / "state" / "tc.stamps"
    settle()
    assert verify_and_stamp(root, files, cache, "m1") == []
    return root, files, cache


def _kinds(root: Path, files: list[ExpectedFile]) -> list[tuple[str, str]]:
    return [(p.path, p.kind) for p in full_check(root, files)]


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)  # spans several read chunks
    (tmp_path / "f").write_bytes(data)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(data).hexdigest()


def test_unchanged_tree_passes_both_checks(tree: tuple[Path, list[ExpectedFile], Path]) -> None:
    root, files, cache = tree
    assert fast_check(root, cache, "m1")
    assert full_check(root, files, workers=1) == []


@pytest.mark.parametrize("keep_stamps", [False, True])
def test_one_byte_changed_is_found(tree: tuple[Path, list[ExpectedFile], Path], keep_stamps: bool) -> None:
    root, files, cache = tree
    target = root / "lib/libfoo.a"
    before = target.stat()
    data = bytearray(target.read_bytes())
    data[1000] ^= 0x01
    target.write_bytes(bytes(data))
    if keep_stamps:  # an attacker restores mtime: ctime still moves, and the fast path must notice
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert not fast_check(root, cache, "m1")
    assert _kinds(root, files) == [("lib/libfoo.a", "hash")]


def test_missing_extra_size_mode_and_type_problems_are_all_reported(
    tree: tuple[Path, list[ExpectedFile], Path],
) -> None:
    root, files, cache = tree
    (root / "README").unlink()
    (root / "include/sub/evil.h").write_text("#define x 1\n")
    (root / "bin/cc").write_bytes(b"#!/bin/sh\nexit 1 # longer\n")
    (root / "include/sub/foo.h").chmod(0o666)
    (root / "newdir").mkdir()
    assert not fast_check(root, cache, "m1")
    assert _kinds(root, files) == [
        ("README", "missing"),
        ("bin/cc", "size"),
        ("include/sub/evil.h", "extra"),
        ("include/sub/foo.h", "mode"),
        ("newdir", "extra"),
    ]


def test_a_symlink_in_place_of_a_file_or_directory_fails(tree: tuple[Path, list[ExpectedFile], Path]) -> None:
    root, files, _ = tree
    outside = root.parent / "outside"
    outside.mkdir()
    (outside / "foo.h").write_bytes((root / "include/sub/foo.h").read_bytes())
    (root / "include/sub/foo.h").unlink()
    (root / "include/sub/foo.h").symlink_to(outside / "foo.h")
    assert ("include/sub/foo.h", "not-a-file") in _kinds(root, files)


def test_a_fifo_or_directory_in_place_of_a_file_fails_without_blocking(
    tree: tuple[Path, list[ExpectedFile], Path],
) -> None:
    root, files, _ = tree
    (root / "README").unlink()
    os.mkfifo(root / "README")  # opening it for reading must not wait for a writer
    (root / "bin/cc").unlink()
    (root / "bin/cc").mkdir()
    kinds = _kinds(root, files)
    assert ("README", "not-a-file") in kinds and ("bin/cc", "not-a-file") in kinds


def test_a_directory_swapped_for_a_link_to_an_identical_copy_fails(
    tree: tuple[Path, list[ExpectedFile], Path],
) -> None:
    root, files, cache = tree
    copy = root.parent / "copy"
    (root / "include").rename(copy)
    (root / "include").symlink_to(copy)
    assert not fast_check(root, cache, "m1")
    assert ("include", "extra") in _kinds(root, files)


def test_fast_path_refuses_a_missing_corrupt_or_foreign_cache(tree: tuple[Path, list[ExpectedFile], Path]) -> None:
    root, _, cache = tree
    assert not fast_check(root, cache, "another-manifest")
    cache.write_bytes(b"\x93garbage")
    assert not fast_check(root, cache, "m1")
    cache.unlink()
    assert not fast_check(root, cache, "m1")


def test_a_touched_file_with_equal_bytes_needs_a_rehash_but_then_passes(
    tree: tuple[Path, list[ExpectedFile], Path],
) -> None:
    root, files, cache = tree
    time.sleep(0.01)
    os.utime(root / "bin/cc")
    assert not fast_check(root, cache, "m1")
    settle()
    assert verify_and_stamp(root, files, cache, "m1") == []
    assert fast_check(root, cache, "m1")


def test_absent_root_is_one_problem(tmp_path: Path) -> None:
    problems = full_check(tmp_path / "nope", [ExpectedFile("a", 1, 0o644, "0" * 64)])
    assert [(p.path, p.kind) for p in problems] == [(".", "missing")]


def test_stamps_of_files_written_during_the_hash_are_not_trusted(tmp_path: Path) -> None:
    # Without settling, the files' ctimes fall inside the racy window: a same-tick change could keep its stamp, so the
    # fast path must refuse to vouch for them until a later full check.
    root = tmp_path / "tc"
    files = _tree(root)
    cache = tmp_path / "tc.stamps"
    assert verify_and_stamp(root, files, cache, "m1") == []
    assert not fast_check(root, cache, "m1")
    settle()
    assert verify_and_stamp(root, files, cache, "m1") == []
    assert fast_check(root, cache, "m1")


def test_a_failed_check_removes_the_stamps(tree: tuple[Path, list[ExpectedFile], Path]) -> None:
    root, files, cache = tree
    (root / "README").write_bytes(b"x")
    assert [p.kind for p in verify_and_stamp(root, files, cache, "m1")] == ["size"]
    assert not cache.exists()


def test_declared_links_are_checked_and_undeclared_ones_refused(tmp_path: Path) -> None:
    root = tmp_path / "tc"
    files = _tree(root)
    (root / "bin/gcc").symlink_to("cc")
    cache = tmp_path / "tc.stamps"
    settle()
    assert verify_and_stamp(root, files, cache, "m1", links={"bin/gcc": "cc"}) == []
    assert fast_check(root, cache, "m1")
    assert [(p.path, p.kind) for p in full_check(root, files)] == [("bin/gcc", "extra")]
    (root / "bin/gcc").unlink()
    (root / "bin/gcc").symlink_to("../README")
    assert not fast_check(root, cache, "m1")
    assert [(p.path, p.kind) for p in full_check(root, files, links={"bin/gcc": "cc"})] == [("bin/gcc", "link")]
    (root / "bin/gcc").unlink()
    assert [(p.path, p.kind) for p in full_check(root, files, links={"bin/gcc": "cc"})] == [("bin/gcc", "missing")]
