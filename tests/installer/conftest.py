"""Fixtures shared by the toolchain-builder tests: a settings object whose trust root is the development one (the
key that signs the bundles built here) and a registry on a database built from the migrations."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sigforge.db.session import Database
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.settings import Settings, load_settings
from sigforge.toolchains.runner import ProcessRunner
from support import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "installer"))
import dev_setup

DEV_CACHE = REPO_ROOT / ".cache" / "dev-toolchain"


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "data")})
    with dev_setup.locked(DEV_CACHE):
        keys = dev_setup.dev_keys(DEV_CACHE)
    dev_setup.install_dev_trust(settings.trust_path, keys)
    return settings


@pytest.fixture
def registry(sqlite_db: Database, settings: Settings) -> ToolchainRegistry:
    return ToolchainRegistry(sqlite_db, settings, ProcessRunner())
