"""The sandboxed process runner: the ONLY place in sigforge that starts processes.

Every run gets:
    * a wall-clock limit (the whole process group is SIGKILLed when it passes) and a CPU-time limit;
    * address-space, file-size, open-file and core-dump limits through ``prlimit`` (no ``preexec_fn``: workers are
      multithreaded, and forking with Python code between fork and exec is unsafe there);
    * a new, empty network namespace through ``unshare --net`` (only a downed loopback exists inside) unless the
      ``sandbox.network`` setting is ``"trust-host"``; if isolation is required but unavailable the run is
      refused with ``SandboxError``, never silently weakened;
    * its own temporary directory (``TMPDIR`` and ``HOME``), removed afterwards, and a scrubbed environment;
    * stdout/stderr captured to files inside that directory (bounded by the file-size limit) and read back up to
      ``OUTPUT_CAP`` bytes each.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sigforge.errors import SandboxError, ToolchainError

Network = Literal["isolate", "trust-host"]
OUTPUT_CAP = 1 << 20  # bytes of stdout / stderr kept per run
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
NOFILE = 1024
_probe_cache: dict[tuple[str, ...], str | None] = {}


@dataclass(frozen=True, slots=True)
class RunResult:
    """Outcome of one sandboxed run (``returncode`` is negative for a signal, as in ``subprocess``)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: bytes
    duration_s: float
    timed_out: bool
    output_truncated: bool = False


def _tool(name: str) -> str | None:
    return shutil.which(name, path=SYSTEM_PATH)


def _probe(wrapper: list[str]) -> str | None:
    """Run ``true`` under ``wrapper`` once per process; the failure text, or None when it works."""
    key = tuple(wrapper)
    if key not in _probe_cache:
        true = _tool("true") or "/bin/true"
        try:
            proc = subprocess.run([*wrapper, true], capture_output=True, timeout=10, check=False, env={})
            _probe_cache[key] = None if proc.returncode == 0 else proc.stderr.decode(errors="replace").strip()
        except (OSError, subprocess.TimeoutExpired) as exc:
            _probe_cache[key] = str(exc)
    return _probe_cache[key]


class ProcessRunner:
    """Runs argv lists with limits, isolation and a scrubbed environment (see the module docstring)."""

    def __init__(self, network: Network = "isolate") -> None:
        """Check that the sandbox can be built.

        Args:
            network: ``"isolate"`` (new network namespace, required) or ``"trust-host"`` (host network).

        Raises:
            SandboxError: ``prlimit`` is missing, or isolation is required and ``unshare --net`` does not work.
        """
        if network not in ("isolate", "trust-host"):
            raise SandboxError(f"sandbox.network must be 'isolate' or 'trust-host', got {network!r}")
        self.network: Network = network
        prlimit = _tool("prlimit")
        if prlimit is None:
            raise SandboxError(f"prlimit (util-linux) was not found in {SYSTEM_PATH}; it is required to limit "
                               "memory, CPU time and file sizes of every sandboxed process")  # fmt: skip
        self._prlimit = prlimit
        self._unshare: list[str] = []
        if network == "isolate":
            unshare = _tool("unshare")
            if unshare is None:
                raise SandboxError(f"network isolation is required (sandbox.network = 'isolate') but unshare was "
                                   f"not found in {SYSTEM_PATH}; install util-linux or, on an air-gapped host that "
                                   "forbids namespaces, set sandbox.network = 'trust-host'")  # fmt: skip
            wrapper = [unshare, "--net"] if os.geteuid() == 0 else [unshare, "--net", "--map-root-user"]
            problem = _probe(wrapper)
            if problem is not None:
                raise SandboxError(
                    "network isolation is required (sandbox.network = 'isolate') but a new network namespace "
                    f"cannot be created here ({' '.join(wrapper)} failed: {problem}); enable unprivileged user "
                    "namespaces or, on an air-gapped host, set sandbox.network = 'trust-host'",
                    detail={"setting": "sandbox.network"},
                )
            self._unshare = wrapper

    def _argv(self, argv: list[str], path: str, timeout_s: float, memory_mb: int, max_file_mb: int) -> list[str]:
        exe = argv[0]
        if "/" not in exe:
            found = shutil.which(exe, path=path)
            if found is None:
                raise ToolchainError(f"program {exe!r} was not found in {path}", detail={"argv": argv})
            exe = found
        cpu_s = math.ceil(timeout_s) + 1
        limits = [
            f"--as={memory_mb * 1024 * 1024}",
            f"--cpu={cpu_s}",
            f"--fsize={max_file_mb * 1024 * 1024}",
            f"--nofile={NOFILE}",
            "--core=0",
        ]
        return [*self._unshare, self._prlimit, *limits, "--", exe, *argv[1:]]

    def run(
        self,
        argv: list[str],
        *,
        cwd: Path,
        timeout_s: float,
        memory_mb: int,
        max_file_mb: int,
        env: dict[str, str] | None = None,
    ) -> RunResult:
        """Run ``argv`` in ``cwd`` inside the sandbox and wait for it.

        Args:
            argv: program and arguments (a bare program name is looked up in the scrubbed ``PATH``).
            cwd: working directory (must exist).
            timeout_s: wall-clock limit; the process group is killed when it passes.
            memory_mb: address-space limit per process.
            max_file_mb: largest file any process may write.
            env: extra environment variables, added to the scrubbed base (``PATH`` may be replaced).

        Returns:
            The ``RunResult``; a non-zero exit is not an error here, callers decide.

        Raises:
            ToolchainError: the program cannot be found or started.
        """
        if not argv:
            raise ToolchainError("empty command")
        with tempfile.TemporaryDirectory(prefix="sigforge-run-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            child_env = {"PATH": SYSTEM_PATH, "LANG": "C", "LC_ALL": "C", "TMPDIR": str(home), "HOME": str(home)}
            child_env.update(env or {})
            full = self._argv(list(argv), child_env["PATH"], timeout_s, memory_mb, max_file_mb)
            out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
            start = time.monotonic()
            timed_out = False
            with out_path.open("wb") as out_f, err_path.open("wb") as err_f:
                try:
                    proc = subprocess.Popen(
                        full, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                        start_new_session=True, close_fds=True,
                    )  # fmt: skip
                except OSError as exc:
                    raise ToolchainError(f"cannot start {argv[0]!r}: {exc.strerror}", detail={"argv": argv}) from exc
                try:
                    returncode = proc.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    returncode = self._kill_group(proc)
                else:
                    # Leftovers (background grandchildren) die with the run. The leader was just reaped, so its pid
                    # could only be reused after a full pid wrap-around: negligible.
                    self._kill_group(proc)
            duration = time.monotonic() - start
            stdout, trunc_out = _read_capped(out_path)
            stderr, trunc_err = _read_capped(err_path)
        return RunResult(tuple(argv), returncode, stdout, stderr, duration, timed_out, trunc_out or trunc_err)

    @staticmethod
    def _kill_group(proc: subprocess.Popen[bytes]) -> int:
        """SIGKILL the run's process group (its session leader's pgid) and reap the leader."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait()


def _read_capped(path: Path) -> tuple[bytes, bool]:
    with path.open("rb") as f:
        data = f.read(OUTPUT_CAP + 1)
    return data[:OUTPUT_CAP], len(data) > OUTPUT_CAP
