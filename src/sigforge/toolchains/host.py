"""Finding the host C compiler (the seam a signed toolchain registry will replace).

Invariant: this module only *locates* a compiler and asks its version through the sandboxed runner; it reads no
configuration from the environment (only ``PATH``, to search). An override is passed in explicitly by the caller
(from settings), so that settings stay the one place configuration comes from.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sigforge.errors import ToolchainError
from sigforge.toolchains.runner import SYSTEM_PATH, ProcessRunner

SEARCH_NAMES = ("gcc", "cc")
OVERRIDE_HINT = "pass the compiler path explicitly (the host_cc override, e.g. find_host_cc('/opt/gcc/bin/gcc'))"


@dataclass(frozen=True, slots=True)
class HostCompiler:
    """A located host C compiler.

    Attributes:
        path: absolute path of the compiler driver.
        version: the first line of ``--version``.
        env: environment variables the compiler needs on this node (a registry toolchain's state directory),
            added to the sandbox's scrubbed environment when it runs.
    """

    path: str
    version: str
    env: Mapping[str, str] = field(default_factory=dict)


def _search_path() -> str:
    extra = os.environ.get("PATH", "")
    return os.pathsep.join(p for p in (SYSTEM_PATH, extra) if p)


def find_host_cc(explicit: str | None = None, *, runner: ProcessRunner | None = None) -> HostCompiler:
    """Locate the host C compiler and read its version.

    Args:
        explicit: a compiler path or name to use instead of searching for gcc, then cc.
        runner: runner for ``--version`` (a default isolating runner when None).

    Raises:
        ToolchainError: nothing usable was found (the message says where it looked and how to override), or the
            compiler does not answer ``--version``.
    """
    search = _search_path()
    if explicit:
        found = explicit if "/" in explicit else shutil.which(explicit, path=search)
        if not found or not Path(found).is_file() or not os.access(found, os.X_OK):
            raise ToolchainError(f"the configured C compiler {explicit!r} is not an executable file "
                                 f"(looked in {search} for bare names)", detail={"compiler": explicit})  # fmt: skip
        path = str(Path(found).resolve())
    else:
        hits = [shutil.which(name, path=search) for name in SEARCH_NAMES]
        first = next((h for h in hits if h), None)
        if first is None:
            raise ToolchainError(
                f"no host C compiler found: looked for {', '.join(SEARCH_NAMES)} in {search}; install gcc or "
                f"{OVERRIDE_HINT}",
                detail={"searched": search.split(os.pathsep), "names": list(SEARCH_NAMES)},
            )
        path = first  # keep the name used (cc -> gcc symlinks resolve at exec time)
    runner = runner or ProcessRunner()
    result = runner.run([path, "--version"], cwd=Path("/"), timeout_s=30, memory_mb=512, max_file_mb=1)
    if result.returncode != 0 or not result.stdout.strip():
        raise ToolchainError(f"C compiler {path} did not answer --version (exit {result.returncode})",
                             detail={"stderr": result.stderr[-2000:].decode(errors="replace")})  # fmt: skip
    version = result.stdout.decode(errors="replace").splitlines()[0].strip()
    return HostCompiler(path, version)
