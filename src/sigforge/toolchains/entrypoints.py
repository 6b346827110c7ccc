"""Asking a toolchain's entry points who they are, through the sandboxed runner.

After an import, and whenever an operator asks for a verification, each declared entry point (cc, ld, size,
objcopy, emulator, simulator, synthesiser...) is run with its version arguments and must answer, with exit status 0,
output containing the version its signed manifest declares. A tool that answers something else is a tool we did not
sign off: the check fails closed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sigforge.toolchains.integrity import Problem
from sigforge.toolchains.runner import ProcessRunner

VERSION_TIMEOUT_S = 30.0
VERSION_MEMORY_MB = 1024
VERSION_LINES = 5  # the version must appear in the first lines, not buried in a help text


@dataclass(frozen=True, slots=True)
class EntryPoint:
    """One tool a toolchain provides.

    Attributes:
        role: what it is for (``cc``, ``ld``, ``size``, ``objcopy``, ``emulator``, ``simulator``, ``synthesiser``...).
        path: relative path inside the toolchain tree.
        version: the text the tool's version output must contain.
        version_args: how to ask (``--version`` for most; ``-V`` for Icarus and Yosys).
    """

    role: str
    path: str
    version: str
    version_args: tuple[str, ...] = field(default=("--version",))


def check_versions(root: Path, entry_points: Sequence[EntryPoint], runner: ProcessRunner) -> list[Problem]:
    """Run every entry point's version query; one ``Problem`` per tool that fails or reports another version."""
    problems: list[Problem] = []
    for ep in entry_points:
        result = runner.run(
            [str(root / ep.path), *ep.version_args],
            cwd=root,
            timeout_s=VERSION_TIMEOUT_S,
            memory_mb=VERSION_MEMORY_MB,
            max_file_mb=1,
        )
        text = (result.stdout + result.stderr).decode(errors="replace")
        head = "\n".join(text.splitlines()[:VERSION_LINES])
        if result.returncode != 0:
            problems.append(Problem(ep.path, "version", f"{ep.role}: `{ep.path} {' '.join(ep.version_args)}` "
                                    f"exited with {result.returncode}: {head[:300]}"))  # fmt: skip
        elif ep.version not in head:
            first = head.splitlines()[0] if head else "(no output)"
            problems.append(Problem(ep.path, "version", f"{ep.role}: reports {first!r}, manifest says {ep.version!r}"))
    return problems
