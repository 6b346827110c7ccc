"""Locating the host C compiler."""

from __future__ import annotations

import pytest

from sigforge.errors import ToolchainError
from sigforge.toolchains import host
from sigforge.toolchains.host import find_host_cc
from sigforge.toolchains.runner import ProcessRunner

pytestmark = pytest.mark.slow


def test_finds_gcc_with_its_version() -> None:
    cc = find_host_cc()
    assert cc.path.startswith("/") and "gcc" in cc.path
    assert "gcc" in cc.version.lower() or "GCC" in cc.version


def test_explicit_compiler_by_name_or_path() -> None:
    cc = find_host_cc("gcc", runner=ProcessRunner("trust-host"))
    assert cc.path.endswith("gcc") or "gcc" in cc.path
    with pytest.raises(ToolchainError, match="not an executable"):
        find_host_cc("/nonexistent/bin/gcc")


def test_nothing_found_says_where_it_looked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host, "SEARCH_NAMES", ("no-such-cc-xyz",))
    with pytest.raises(ToolchainError) as info:
        find_host_cc()
    msg = info.value.message
    assert "no-such-cc-xyz" in msg and "/usr/bin" in msg and "explicitly" in msg
    assert info.value.detail["searched"]


def test_a_program_that_is_not_a_compiler_is_refused(tmp_path) -> None:
    fake = tmp_path / "fakecc"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ToolchainError, match="did not answer --version"):
        find_host_cc(str(fake))
