from __future__ import annotations

from pathlib import Path

import pytest
from bundlekit import Box, make_trust

from sigforge.bundles.keys import SigningKey
from sigforge.bundles.trust import SignedRoot


@pytest.fixture(scope="session")
def trust() -> tuple[SignedRoot, dict[str, list[SigningKey]]]:
    return make_trust()


@pytest.fixture
def box(tmp_path: Path, trust: tuple[SignedRoot, dict[str, list[SigningKey]]]) -> Box:
    return Box(tmp_path / "box", trust[0]) if (tmp_path / "box").mkdir() is None else Box(tmp_path, trust[0])


@pytest.fixture
def tc_keys(trust: tuple[SignedRoot, dict[str, list[SigningKey]]]) -> list[SigningKey]:
    return trust[1]["toolchain"]
