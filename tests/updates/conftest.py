"""Fixtures for the update tests: releases built once per session (per xdist worker), a fresh box per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from releasekit import REPO_HEAD, V2_REV, V3_REV, Box, Releases, bundle, make_tree, migration, running_v1

from toolchainkit import new_keys, with_bad_signature


def pytest_configure(config: pytest.Config) -> None:
    # registered by pytest-xdist; declared here too so that `-p no:xdist` runs keep --strict-markers happy
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")


@pytest.fixture(scope="session")
def releases(tmp_path_factory: pytest.TempPathFactory) -> Releases:
    """v1 (the repository's schema), v2 (+ migration V2_REV), v3 (+ V3_REV), and the fault tests' bundles."""
    root = tmp_path_factory.mktemp("releases")
    keys = new_keys()
    key = keys["release"]
    m3 = {f"{V2_REV}_release_notes.py": migration(V2_REV, REPO_HEAD, "release_notes")}
    m4 = {**m3, f"{V3_REV}_more_notes.py": migration(V3_REV, V2_REV, "more_notes")}
    v1 = make_tree(root / "1.0.0", "1.0.0")
    v2 = make_tree(root / "2.0.0", "2.0.0", migrations=m3)
    v3 = make_tree(root / "3.0.0", "3.0.0", migrations=m4)
    m3_raises = {f"{V2_REV}_raises.py": migration(V2_REV, REPO_HEAD, "release_notes", raises=True)}
    raising = make_tree(root / "2.0.0-raises", "2.0.0", migrations=m3_raises)
    unhealthy = make_tree(root / "2.0.0-unhealthy", "2.0.0", migrations=m3, broken_up=True)
    gz = bundle(v2, root / "v2-gzip.bundle", "2.0.0", key, compression="gzip")
    return Releases(
        keys=keys, v1=v1, v2=v2, v3=v3,
        v2_bundle=bundle(v2, root / "v2.bundle", "2.0.0", key),
        v2_migration_raises=bundle(raising, root / "v2-raises.bundle", "2.0.0", key),
        v2_unhealthy=bundle(unhealthy, root / "v2-unhealthy.bundle", "2.0.0", key),
        v2_expired=bundle(v2, root / "v2-expired.bundle", "2.0.0", key, expired=True),
        v2_bad_signature=with_bad_signature(gz, root / "v2-bad-signature.bundle"),
        v0_9_bundle=bundle(make_tree(root / "0.9.0", "0.9.0"), root / "v0.9.bundle", "0.9.0", key),
        v1_bundle=bundle(v1, root / "v1.bundle", "1.0.0", key),
    )  # fmt: skip


@pytest.fixture
def box(tmp_path: Path, releases: Releases) -> Iterator[Box]:
    """A v1 box in a temporary PREFIX, running (pidfile mode), holding rows and an artifact."""
    with running_v1(tmp_path, releases.keys, releases.v1) as b:
        yield b
