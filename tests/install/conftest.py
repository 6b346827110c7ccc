"""The install-media tests share one built media per module; ``xdist_group`` keeps them on one xdist worker."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    # registered by pytest-xdist; declared here too so that `-p no:xdist` runs keep --strict-markers happy
    config.addinivalue_line("markers", "xdist_group(name): run these tests on one xdist worker")
