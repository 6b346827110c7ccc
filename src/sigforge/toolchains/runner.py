"""The sandboxed process runner: the ONLY place in sigforge that starts processes.

Every run gets:
    * a wall-clock limit (the whole process group is SIGKILLed when it passes) and a CPU-time limit;
    * address-space, file-size, open-file and core-dump limits through ``prlimit`` (no ``preexec_fn``: workers are
      multithreaded, and forking with Python code between fork and exec is unsafe there);
    * a new, empty network namespace through ``unshare --net`` (only a downed loopback exists inside) unless the
      ``sandbox.network`` setting is ``"trust-host"``; if isolation is required but unavailable the run is
      refused with ``SandboxError``, never silently weakened;
    * with network isolation, also a new PID namespace (see "PID namespace" below), so that no process of the
      run, not even one that called ``setsid()`` or double-forked, outlives the run or its timeout;
    * its own temporary directory (``TMPDIR`` and ``HOME``), removed afterwards, and a scrubbed environment;
    * stdout/stderr captured to files inside that directory (bounded by the file-size limit) and read back up to
      ``OUTPUT_CAP`` bytes each.

PID namespace (``sandbox.network = "isolate"`` only). The program runs as
``unshare --net --pid --fork --kill-child [--mount-proc] [--map-root-user] -- <python> -I -S -c _INIT <fd>
prlimit ... -- program`` (a frozen binary runs ``-- sigforge __sandbox_init__ <fd> prlimit ...`` instead: the
same init text, see ``sandbox_init`` and :func:`init_command`). ``_INIT`` is a few lines of Python that must find
itself at pid 1 of the new namespace (else it refuses to run: the namespace is verified, not assumed); it starts
the program as pid 2 with default signal dispositions, reaps orphans, and when the program exits writes its
``subprocess``-style returncode to a pipe only it holds, then exits, whereupon the kernel SIGKILLs everything left
in the namespace. On a timeout the runner SIGKILLs the process group (``unshare`` and the init): ``--kill-child``
and the init's death take the rest of the namespace down with them within milliseconds.

Why an init of our own instead of letting the program be pid 1: the kernel drops every signal that a
namespace's pid 1 has not got a handler for when it comes from inside the namespace, so ``kill -9 $$`` or
``raise(SIGTERM)`` in the program would be ignored and orphans would be left unreaped. And ``unshare --fork``
does not report a signal death faithfully (util-linux 2.38 turns a child's SIGKILL into exit status 1 and
re-raises other signals on itself, core dump included), so the returncode is taken from the init's pipe:
``-N`` when the program was killed by signal ``N``, exactly as without the namespace (or as ``subprocess``).

``--mount-proc`` (a private ``/proc`` in a new mount namespace, so ``/proc/<getpid()>`` is the program itself
and host processes are not listed) is used when it works, checked once per process like the rest; where it
does not (some nested containers refuse a new procfs mount), the PID namespace is kept without it and
``/proc`` still shows the host's processes. It is hygiene, not a security boundary.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from sigforge.errors import SandboxError, ToolchainError
from sigforge.toolchains import sandbox_init

Network = Literal["isolate", "trust-host"]
OUTPUT_CAP = 1 << 20  # bytes of stdout / stderr kept per run
SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
# Open files per process. Bounded, but not tight: zig holds a lock on every cached object it reuses while it checks
# them (about 1,100 for a target's musl libc), and a failed check means rebuilding libc.
NOFILE = 8192
_probe_cache: dict[tuple[str, ...], str | None] = {}

#: pid 1 of the run's PID namespace (see the module docstring): ``_INIT <status fd or -> <argv...>``.
_INIT = sandbox_init.SOURCE


def init_command() -> list[str]:
    """How to start the PID namespace's init; its arguments (status fd, then the program's argv) follow.

    From a Python installation: a bare interpreter (``-I -S``) running :data:`_INIT`. A frozen ``sigforge`` binary
    (PyInstaller) has no ``-c``; it runs the same text through its hidden ``__sandbox_init__`` subcommand, which its
    entry script dispatches before importing anything else.
    """
    if getattr(sys, "frozen", False):
        return [sys.executable, sandbox_init.FROZEN_SUBCOMMAND]
    return [sys.executable, "-I", "-S", "-c", _INIT]


def init_environment() -> dict[str, str]:
    """Variables the init itself needs, on top of the scrubbed environment (none from a Python installation).

    A frozen binary's bootloader finds its own files through PyInstaller's ``_PYI_*`` variables. Without them a
    onefile binary would unpack itself again (tens of MB, on every sandboxed process) and run Python in a second
    process, so the init would not be pid 1 and would refuse. The init removes them before it starts the program.
    """
    if not getattr(sys, "frozen", False):
        return {}
    return {k: v for k, v in os.environ.items() if k.startswith(sandbox_init.FROZEN_ENV_PREFIX)}


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
            proc = subprocess.run(
                [*wrapper, true], capture_output=True, timeout=10, check=False, env=init_environment()
            )
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
            SandboxError: ``prlimit`` is missing, or isolation is required and new network and PID namespaces
                (``unshare --net --pid``, with our init at pid 1) cannot be created.
        """
        if network not in ("isolate", "trust-host"):
            raise SandboxError(f"sandbox.network must be 'isolate' or 'trust-host', got {network!r}")
        self.network: Network = network
        prlimit = _tool("prlimit")
        if prlimit is None:
            raise SandboxError(f"prlimit (util-linux) was not found in {SYSTEM_PATH}; it is required to limit "
                               "memory, CPU time and file sizes of every sandboxed process")  # fmt: skip
        self._prlimit = prlimit
        #: argv prefix up to and including the PID-namespace init (empty with ``trust-host``); the status fd
        #: (or ``-``) then prlimit's argv follow it.
        self._sandbox: list[str] = []
        #: whether the program sees a private ``/proc`` (``--mount-proc`` worked; see the module docstring).
        self.private_proc = False
        if network == "isolate":
            unshare = _tool("unshare")
            if unshare is None:
                raise SandboxError(f"network isolation is required (sandbox.network = 'isolate') but unshare was "
                                   f"not found in {SYSTEM_PATH}; install util-linux or, on an air-gapped host that "
                                   "forbids namespaces, set sandbox.network = 'trust-host'")  # fmt: skip
            if not sys.executable:
                raise SandboxError("network isolation is required (sandbox.network = 'isolate') but the Python "
                                   "interpreter path is unknown, so the PID namespace's init cannot be started",
                                   detail={"setting": "sandbox.network"})  # fmt: skip
            base = [unshare, "--net", "--pid", "--fork", "--kill-child"]
            user = [] if os.geteuid() == 0 else ["--map-root-user"]
            init = ["--", *init_command()]
            problems: list[str] = []
            for extra in (["--mount-proc"], []):
                wrapper = [*base, *extra, *user, *init]
                problem = _probe([*wrapper, "-"])
                if problem is None:
                    self._sandbox = wrapper
                    self.private_proc = bool(extra)
                    break
                problems.append(f"{' '.join([*base, *extra, *user])} failed: {problem}")
            else:
                raise SandboxError(
                    "network isolation is required (sandbox.network = 'isolate') but new network and PID "
                    f"namespaces cannot be created here ({'; '.join(problems)}); enable unprivileged user "
                    "namespaces or, on an air-gapped host, set sandbox.network = 'trust-host'",
                    detail={"setting": "sandbox.network"},
                )

    def _argv(
        self, argv: list[str], path: str, timeout_s: float, memory_mb: int, max_file_mb: int, *, status_fd: int
    ) -> list[str]:
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
        sandbox = [*self._sandbox, str(status_fd)] if self._sandbox else []
        return [*sandbox, self._prlimit, *limits, "--", exe, *argv[1:]]

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
            timeout_s: wall-clock limit; every process of the run is killed when it passes.
            memory_mb: address-space limit per process.
            max_file_mb: largest file any process may write.
            env: extra environment variables, added to the scrubbed base (``PATH`` may be replaced).

        Returns:
            The ``RunResult``; a non-zero exit is not an error here, callers decide. ``returncode`` is ``-N`` when
            the program was killed by signal ``N`` (``-9`` after a timeout).

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
            if self._sandbox:
                child_env.update(init_environment())
            # The init of the PID namespace reports the program's returncode on this pipe (see the module docs).
            status_r, status_w = os.pipe() if self._sandbox else (-1, -1)
            try:
                full = self._argv(list(argv), child_env["PATH"], timeout_s, memory_mb, max_file_mb, status_fd=status_w)
                out_path, err_path = Path(tmp) / "stdout", Path(tmp) / "stderr"
                start = time.monotonic()
                timed_out = False
                with out_path.open("wb") as out_f, err_path.open("wb") as err_f:
                    try:
                        proc = subprocess.Popen(
                            full, cwd=cwd, env=child_env, stdin=subprocess.DEVNULL, stdout=out_f, stderr=err_f,
                            start_new_session=True, close_fds=True, pass_fds=(status_w,) if status_w >= 0 else (),
                        )  # fmt: skip
                    except OSError as exc:
                        raise ToolchainError(
                            f"cannot start {argv[0]!r}: {exc.strerror}", detail={"argv": argv}
                        ) from exc
                    finally:
                        if status_w >= 0:
                            os.close(status_w)
                            status_w = -1
                    timed_out = _wait_with_deadline(proc, timeout_s)
                    if timed_out:
                        returncode = self._kill_group(proc)
                    else:
                        # Leftovers (background grandchildren) die with the run: with a PID namespace the kernel
                        # already killed them when the init exited; without one, kill the process group. The
                        # leader is still an unreaped zombie here, so its pgid cannot have been reused.
                        returncode = self._kill_group(proc)
                        if status_r >= 0:
                            reported = _read_status(status_r)
                            if reported is not None:
                                returncode = reported
            finally:
                for fd in (status_r, status_w):
                    if fd >= 0:
                        os.close(fd)
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


def _wait_with_deadline(proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    """Block until ``proc`` exits (without reaping it) or ``timeout_s`` passes; True when the deadline won.

    ``Popen.wait(timeout=...)`` polls with sleeps of up to 50 ms, which added tens of milliseconds to every short run
    (a translation makes ~20). Here the caller's thread blocks in ``waitid(WNOWAIT)`` and a timer kills the run's
    process group at the deadline; the leader stays a zombie until it is reaped, so its pgid cannot be reused
    under the timer's feet.
    """
    lock = threading.Lock()
    state = {"exited": False, "expired": False}

    def expire() -> None:
        with lock:
            if state["exited"]:
                return
            state["expired"] = True
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, expire)
    timer.daemon = True
    timer.start()
    try:
        while True:
            try:
                os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries, but be explicit
                continue
            except ChildProcessError:  # already reaped elsewhere
                break
    finally:
        with lock:
            state["exited"] = True
        timer.cancel()
    return state["expired"]


def _read_status(fd: int) -> int | None:
    """The returncode the namespace's init wrote, or None if it wrote none (it failed before the program ran)."""
    os.set_blocking(fd, False)
    try:
        data = os.read(fd, 64)
    except BlockingIOError:  # pragma: no cover - the init is dead once unshare returned, so this is EOF or data
        return None
    try:
        return int(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        return None


def _read_capped(path: Path) -> tuple[bytes, bool]:
    with path.open("rb") as f:
        data = f.read(OUTPUT_CAP + 1)
    return data[:OUTPUT_CAP], len(data) > OUTPUT_CAP
