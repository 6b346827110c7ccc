"""Helpers shared by test modules (conftest files are for fixtures; they are not imported by name)."""

from __future__ import annotations

import os
from pathlib import Path

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
    """Environment for Python children: the network guard on PYTHONPATH, no stray SIGFORGE_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGFORGE_")}
    paths = [str(TESTS_DIR / "_sitecustomize"), env.get("PYTHONPATH", "")]
    env["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    env.update(overrides)
    return env
