"""The systemd units that ``install.sh`` installs, checked by systemd's own parser (``systemd-analyze verify``).

systemd does not run these machines (no PID 1 systemd), so a systemd install cannot be run here end to end; this
at least proves that the units — as ``install.sh`` writes them, paths substituted — load without a single warning:
no unknown or misspelled directive, no bad value, every ``Exec*`` program present and executable. The units are
loaded in a scratch root (``--root``) that holds a copy of the host's own unit directory (for ``sysinit.target``
and friends) and a stand-in ``current/bin/sigforge``.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from realservices import in_ci
from support import REPO_ROOT

UNITS = (
    "sigforge.service",
    "sigforge-worker.service",
    "sigforge-up.service",
    "sigforge-update.service",
    "sigforge-update.path",
)
SYSTEM_UNITS = Path("/usr/lib/systemd/system")


def _require_systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None or not SYSTEM_UNITS.is_dir():
        if in_ci():
            pytest.fail("systemd-analyze (package systemd) is required under CI=true to check the units")
        pytest.skip("systemd-analyze is not installed")
    return found


def _install_units(root: Path, prefix: str) -> list[Path]:
    """The units as install.sh writes them for ``prefix`` (its ``sed`` substitutions), into ``root``."""
    opt = f"{prefix.rstrip('/')}/opt/sigforge" if prefix != "/" else "/opt/sigforge"
    etc = f"{prefix.rstrip('/')}/etc/sigforge"
    data = f"{prefix.rstrip('/')}/var/lib/sigforge"
    binary = root / opt.lstrip("/") / "current" / "bin" / "sigforge"
    binary.parent.mkdir(parents=True)
    binary.write_text("#!/bin/sh\nexit 0\n")
    binary.chmod(0o755)
    shutil.copytree(SYSTEM_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    target = root / "etc/systemd/system"
    target.mkdir(parents=True)
    written = []
    for unit in UNITS:
        text = (REPO_ROOT / "appliance" / "units" / unit).read_text()
        text = text.replace("/opt/sigforge", opt).replace("/etc/sigforge", etc).replace("/var/lib/sigforge", data)
        (target / unit).write_text(text)
        written.append(target / unit)
    return written


def _verify(tool: str, root: Path, units: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([tool, f"--root={root}", "verify", *(u.name for u in units)], cwd=units[0].parent,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip


@pytest.mark.parametrize("prefix", ["/", "/srv/sigforge-test"])
def test_the_units_load_without_a_warning(tmp_path: Path, prefix: str) -> None:
    tool = _require_systemd_analyze()
    units = _install_units(tmp_path / "root", prefix)
    result = _verify(tool, tmp_path / "root", units)
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_a_misspelled_directive_is_caught(tmp_path: Path) -> None:
    tool = _require_systemd_analyze()
    units = _install_units(tmp_path / "root", "/")
    units[0].write_text(units[0].read_text().replace("TimeoutStopSec=", "TimeoutStopSecs="))
    result = _verify(tool, tmp_path / "root", units)
    assert "Unknown key" in result.stderr and "TimeoutStopSecs" in result.stderr
