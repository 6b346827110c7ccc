"""Helpers shared by test modules (conftest files are for fixtures; they are not imported by name)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent

FIR_DECIMATE = """\
import numpy as np
from scipy import signal

TAPS = signal.firwin(31, 0.2)

def channelize(x):
    y = signal.lfilter(TAPS, 1.0, x)
    return 0.5 * y[::4]
"""


def child_env(**overrides: str) -> dict[str, str]:
    """Environment for Python children: the network guard on PYTHONPATH, no stray SIGFORGE_* settings, and not
    systemd's unit identity (``INVOCATION_ID``: a suite run from a unit must still test the pidfile mode)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGFORGE_") and k != "INVOCATION_ID"}
    paths = [str(TESTS_DIR / "_sitecustomize"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(overrides)
    return env


def example_options(path: Path) -> dict[str, str]:
    """An example's ``# sigforge: key=value`` comments (the tests read them; the translator never does).

    ``input_dtype`` (default float32) is the request dtype; ``reference=prepend_zero`` says the example holds the FM
    discriminator, whose streaming output equals the Python function applied to the signal with one zero sample
    prepended.
    """
    options: dict[str, str] = {}
    for line in path.read_text().splitlines():
        if line.startswith("# sigforge:") and "=" in line:
            key, value = line.removeprefix("# sigforge:").strip().split("=", 1)
            options[key.strip()] = value.strip()
    return options


def provision_toolchain(settings: object) -> None:
    """Install the development trust root and import the host-gcc toolchain bundle into ``settings``' data dir.

    The same code path as ``make run`` (``installer/dev_setup.py``): the bundle is built once per content key and
    cached in ``.cache/dev-toolchain`` (shared by parallel workers through a file lock); the import is real.
    """
    import sys

    installer = str(REPO_ROOT / "installer")
    if installer not in sys.path:
        sys.path.insert(0, installer)
    import dev_setup

    dev_setup.ensure(settings, REPO_ROOT / ".cache" / "dev-toolchain")  # type: ignore[arg-type]


def assert_problem(response: Any, status: int, code: str) -> dict[str, Any]:
    """The RFC 9457 problem-details body of an error ``response``, after checking its status, type and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["code"] == code, body
    return body
