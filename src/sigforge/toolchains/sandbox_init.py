"""The PID namespace's init (pid 1 of every isolated run; see ``sigforge.toolchains.runner``).

``SOURCE`` is the whole init, a few lines of Python that use only ``os``, ``signal`` and ``sys``. It reads its
arguments from ``sys.argv``: ``<status fd or -> <program argv...>``. It runs in one of two ways, always this same
text:

* from a Python installation, as ``python -I -S -c SOURCE <fd> argv...`` (no site, no user paths: a bare
  interpreter starts in a few tens of milliseconds);
* from the frozen ``sigforge`` binary, which has no ``-c``: ``sigforge __sandbox_init__ <fd> argv...``, which the
  frozen entry script (``appliance/frozen_main.py``) hands to :func:`run` before it imports anything else.

This module must stay importable on its own, with nothing but the standard library.
"""

from __future__ import annotations

import os
import sys

#: The subcommand of the frozen binary that runs :data:`SOURCE` (hidden: not part of the CLI).
FROZEN_SUBCOMMAND = "__sandbox_init__"

SOURCE = """\
import os, signal, sys
if os.getpid() != 1:
    sys.exit("sigforge-init: not pid 1 of a new PID namespace")
signal.signal(signal.SIGINT, signal.SIG_DFL)
fd = -1 if sys.argv[1] == "-" else int(sys.argv[1])
if fd >= 0:
    os.set_inheritable(fd, False)
argv = sys.argv[2:]
try:
    child = os.posix_spawn(argv[0], argv, os.environ, setsigmask=(),
                           setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT))
except OSError as exc:
    sys.stderr.write(f"sigforge-init: cannot start {argv[0]}: {exc.strerror}\\n")
    code = 127
else:
    while True:
        pid, status = os.waitpid(-1, 0)
        if pid == child:
            break
    code = os.waitstatus_to_exitcode(status)
if fd >= 0:
    os.write(fd, str(code).encode())
os._exit(code if code >= 0 else 128 - code)
"""


#: PyInstaller's bootloader variables, which the runner passes to a frozen init (see ``runner.init_environment``).
FROZEN_ENV_PREFIX = "_PYI_"


def run(args: list[str]) -> None:
    """Run the init with ``args`` (``<status fd or -> <program argv...>``) in this process; never returns.

    The bootloader's ``_PYI_*`` variables were for this process only: the program gets the runner's scrubbed
    environment, exactly as from a Python installation.
    """
    for key in [k for k in os.environ if k.startswith(FROZEN_ENV_PREFIX)]:
        del os.environ[key]
    sys.argv = ["sigforge-init", *args]
    exec(compile(SOURCE, "<sigforge-init>", "exec"), {"__name__": "__main__"})  # noqa: S102 - our own constant
    raise SystemExit(70)  # pragma: no cover - SOURCE always ends in os._exit
