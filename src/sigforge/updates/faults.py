"""The fault-injection hook for the update tests: crash the updater at a step boundary, nothing else.

``SFTEST_UPDATE_FAULT=<step>:kill`` sends SIGKILL to the updater itself right after ``<step>`` is recorded in the
journal; ``<step>:raise`` raises ``InjectedFault`` there (an ordinary failure: the automatic rollback runs). The
variable is deliberately *not* a ``SIGFORGE_`` setting (settings refuse unknown ``SIGFORGE_*`` names), is read only at
the step boundaries of ``services.updates``, and can do nothing but crash the process that reads it.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping

FAULT_ENV = "SFTEST_UPDATE_FAULT"


class InjectedFault(RuntimeError):
    """The failure ``<step>:raise`` injects."""


def fault_point(step: str, env: Mapping[str, str] | None = None) -> None:
    """Crash here if the test hook names ``step``; otherwise do nothing."""
    spec = (os.environ if env is None else env).get(FAULT_ENV, "")
    where, _, how = spec.partition(":")
    if not spec or where != step:
        return
    if how == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    if how == "raise":
        raise InjectedFault(f"fault injected after step {step} ({FAULT_ENV})")
