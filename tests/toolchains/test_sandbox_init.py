"""The PID-namespace init as the frozen binary runs it: ``<exe> __sandbox_init__ <fd> argv...``.

The frozen binary itself is tested in ``tests/frozen``; here a stand-in executable runs the frozen entry script
(``appliance/frozen_main.py``) with a bare interpreter, so the runner's frozen path (``init_command``), the entry
script's early dispatch and the shared init text are exercised on every run of the suite.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

from sigforge.toolchains import runner as runner_mod
from sigforge.toolchains import sandbox_init
from sigforge.toolchains.runner import ProcessRunner, init_command
from support import REPO_ROOT

pytestmark = pytest.mark.slow


@pytest.fixture
def frozen_standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Pretend to be frozen, with ``sys.executable`` a script that behaves like the binary's entry point."""
    exe = tmp_path / "sigforge-standin"
    loader = (
        f"import sys, runpy; sys.path[:0] = [{str(REPO_ROOT / 'src')!r}]; "
        f"runpy.run_path({str(REPO_ROOT / 'appliance' / 'frozen_main.py')!r}, run_name='__main__')"
    )
    seen = tmp_path / "init-saw"
    exe.write_text(
        f'#!/bin/sh\necho "$_PYI_APPLICATION_HOME_DIR" >> {seen}\nexec {sys.executable} -I -S -c "{loader}" "$@"\n'
    )
    exe.chmod(0o755)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    monkeypatch.setattr(runner_mod, "_probe_cache", {})
    return exe


def test_init_command_is_the_bare_interpreter_when_not_frozen() -> None:
    assert init_command() == [sys.executable, "-I", "-S", "-c", sandbox_init.SOURCE]
    assert runner_mod._INIT is sandbox_init.SOURCE


def test_init_command_is_the_hidden_subcommand_when_frozen(frozen_standin: Path) -> None:
    assert init_command() == [str(frozen_standin), "__sandbox_init__"]
    assert ProcessRunner("isolate")._sandbox[-2:] == [str(frozen_standin), "__sandbox_init__"]


def test_frozen_init_runs_programs_in_the_pid_namespace(frozen_standin: Path, tmp_path: Path) -> None:
    runner = ProcessRunner("isolate")
    opts = {"cwd": tmp_path, "timeout_s": 20, "memory_mb": 512, "max_file_mb": 16}
    res = runner.run(["sh", "-c", "echo $$; exit 7"], **opts)  # type: ignore[arg-type]
    assert (res.stdout, res.returncode) == (b"2\n", 7), res.stderr
    killed = runner.run(["sh", "-c", "kill -9 $$"], **opts)  # type: ignore[arg-type]
    assert killed.returncode == -signal.SIGKILL  # the init's pipe reports the signal, as without freezing
    missing = runner.run(["/nonexistent/prog"], **opts)  # type: ignore[arg-type]
    assert missing.returncode != 0


def test_frozen_init_gets_the_bootloader_variables_and_the_program_does_not(
    frozen_standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_PYI_APPLICATION_HOME_DIR", "/opt/unpacked")
    runner = ProcessRunner("isolate")
    res = runner.run(["sh", "-c", "env"], cwd=tmp_path, timeout_s=20, memory_mb=512, max_file_mb=16)
    assert res.returncode == 0, res.stderr
    assert b"_PYI_" not in res.stdout and b"PATH=" in res.stdout
    assert (tmp_path / "init-saw").read_text().splitlines()[-1] == "/opt/unpacked"  # the init had it


def test_frozen_entry_dispatches_the_init_before_the_cli(frozen_standin: Path) -> None:
    """Outside a new namespace the init refuses (it is not pid 1): proof that the CLI never saw the argument."""
    proc = subprocess.run([str(frozen_standin), "__sandbox_init__", "-", "/bin/true"], capture_output=True, check=False)
    assert proc.returncode == 1 and b"sigforge-init: not pid 1" in proc.stderr
    assert b"usage" not in proc.stderr
