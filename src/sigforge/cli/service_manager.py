"""How the updater starts, stops and probes sigforge's services: the ``ServiceManager`` port and its two
implementations, and ``ProcessHost`` (``services.updates.UpdateHost``: services + running a release's own commands +
the readiness probe). Process spawning is allowed here (the CLI layer); the update service only sees the port.

* ``SystemdServices`` (production): ``systemctl start|stop|is-active`` on ``sigforge.service`` (``current/bin/sigforge
  serve``) and ``sigforge-worker.service`` (``current/bin/sigforge worker``); systemd does the graceful stop
  (SIGTERM, ``TimeoutStopSec=``).
* ``PidfileServices`` ("no-systemd": tests, ``--prefix`` installs): ``current/bin/sigforge up`` started detached (its
  own session) with ``<data_dir>/sigforge.pid`` holding ``PID STARTTIME`` (the start time guards against a reused
  pid). Stopping sends one SIGTERM — ``up`` stops its worker pool gracefully (running jobs finish, or their messages
  are redelivered) — and waits for ``up`` and every process below it; what is left after the timeout is SIGKILLed.
* ``launch_detached``: how ``sigforge up`` starts ``sigforge update run-requests`` in pidfile mode — in its own
  session and re-parented away from ``up`` (an intermediate shell starts it in the background and exits), so that
  the updater's own stop step, which kills ``up`` and everything below it, does not kill the updater.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from sigforge.errors import ServiceUnavailable
from sigforge.fsutil import atomic_write
from sigforge.settings import Settings
from sigforge.updates.ownership import Owner

PIDFILE = "sigforge.pid"
VERSION_HEADER = "x-sigforge-version"


class ServiceManager(Protocol):
    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def running(self) -> bool: ...


class SystemdServices:
    """The production units; ``systemctl`` waits for each job (start or graceful stop) to finish."""

    name = "systemd"
    UNITS = ("sigforge-worker.service", "sigforge.service")

    def _systemctl(self, *args: str) -> int:
        return subprocess.run(["systemctl", *args], check=False, timeout=600).returncode  # noqa: S607

    def start(self) -> None:
        if self._systemctl("start", *self.UNITS) != 0:
            raise ServiceUnavailable(f"systemctl start {' '.join(self.UNITS)} failed")

    def stop(self) -> None:
        if self._systemctl("stop", *self.UNITS) != 0:
            raise ServiceUnavailable(f"systemctl stop {' '.join(self.UNITS)} failed")

    def running(self) -> bool:
        return self._systemctl("is-active", "--quiet", "sigforge.service") == 0

    @staticmethod
    def available() -> bool:
        return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def _proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/PID/stat after the command name (state is [0], ppid [1], start time [19])."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def _alive(pid: int, starttime: str | None = None) -> bool:
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our own child that exited
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return starttime is None or fields[19] == starttime


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None:
                children.setdefault(int(fields[1]), []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


class PidfileServices:
    """``current/bin/sigforge up``, detached, tracked by a pidfile under the data directory."""

    name = "pidfile"

    def __init__(
        self,
        current: Path,
        data_dir: Path,
        *,
        config_file: str | None = None,
        env: Mapping[str, str] | None = None,
        stop_timeout_s: float = 90.0,
        run_as: Owner | None = None,
    ) -> None:
        self.run_as = run_as
        self.current = current
        self.pidfile = data_dir / PIDFILE
        self.log = data_dir / "logs" / "sigforge-up.log"
        self.config_file = config_file
        self.env = dict(os.environ if env is None else env)
        self.stop_timeout_s = stop_timeout_s

    def _read(self) -> tuple[int, str] | None:
        try:
            pid, starttime = self.pidfile.read_text().split()
            return int(pid), starttime
        except (OSError, ValueError):
            return None

    def running(self) -> bool:
        entry = self._read()
        return entry is not None and _alive(*entry)

    def start(self) -> None:
        if self.running():
            return
        command = [str(self.current / "bin" / "sigforge")]
        if self.config_file:
            command += ["--config", self.config_file]
        command.append("up")
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                command, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=self.env, cwd="/",
                start_new_session=True, close_fds=True, **_as_user(self.run_as),
            )  # fmt: skip
        fields = _proc_stat(proc.pid)
        atomic_write(self.pidfile, f"{proc.pid} {fields[19] if fields else '0'}\n".encode(), mode=0o644)

    def stop(self) -> None:
        entry = self._read()
        if entry is None or not _alive(*entry):
            self.pidfile.unlink(missing_ok=True)
            return
        pid = entry[0]
        family = [pid, *_descendants(pid)]
        starts = {p: (_proc_stat(p) or [""] * 20)[19] for p in family}
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout_s
        while time.monotonic() < deadline and any(_alive(p, starts[p]) for p in family):
            time.sleep(0.1)
        for p in family:
            if _alive(p, starts[p]):
                os.kill(p, signal.SIGKILL)
        while any(_alive(p, starts[p]) for p in family):
            time.sleep(0.05)
        self.pidfile.unlink(missing_ok=True)


def launch_detached(command: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None) -> None:
    """Start ``command`` in a new session, NOT as a descendant of this process, its output appended to ``log``.

    A ``sh`` in a new session starts the command in the background and exits at once: the command is orphaned and
    re-parented (to init or a subreaper above this process), so ``PidfileServices.stop`` does not see it below ``up``.
    """
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        shell = subprocess.Popen(
            ["/bin/sh", "-c", '"$@" </dev/null & exit 0', "sigforge-launch", *command], stdin=subprocess.DEVNULL,
            stdout=out, stderr=subprocess.STDOUT, env=dict(os.environ if env is None else env), cwd="/",
            start_new_session=True, close_fds=True,
        )  # fmt: skip
    shell.wait(timeout=60)


def make_manager(
    kind: str, current: Path, settings: Settings, config_file: str | None, *, run_as: Owner | None = None
) -> ServiceManager:
    """``kind`` auto|systemd|pidfile (auto: systemd when it runs this machine) for the release at ``current``;
    ``run_as``: who pidfile-mode services run as (systemd units name their own ``User=``)."""
    if kind == "auto":
        kind = "systemd" if SystemdServices.available() else "pidfile"
    if kind == "systemd":
        return SystemdServices()
    return PidfileServices(current, settings.data_path, config_file=config_file, run_as=run_as)


def _as_user(owner: Owner | None) -> dict[str, Any]:
    """``subprocess`` arguments that run a child as ``owner`` (no supplementary groups), or none."""
    return {} if owner is None else {"user": owner.uid, "group": owner.gid, "extra_groups": []}


def ready_url(settings: Settings) -> str:
    """``/readyz`` of this node's web service on the loopback (a wildcard listen address is probed there)."""
    host = "127.0.0.1" if settings.server.host in ("0.0.0.0", "::", "") else settings.server.host  # noqa: S104
    return f"http://{host}:{settings.server.port}/readyz"


class ProcessHost:
    """``services.updates.UpdateHost`` on this machine: a service manager, release commands and a readiness probe."""

    def __init__(
        self,
        services: ServiceManager,
        *,
        ready_url: str,
        config_file: str | None = None,
        env: Mapping[str, str] | None = None,
        run_as: Owner | None = None,
    ) -> None:
        self.services = services
        self.name = services.name
        self.ready_url = ready_url
        self.config_file = config_file
        self.env = dict(os.environ if env is None else env)
        #: a root updater runs the releases' commands (migrations, restores) as the data directory's owner, so that
        #: the database files they create or rewrite stay the services' (``updates.ownership``)
        self.run_as = run_as

    def stop_services(self) -> None:
        self.services.stop()

    def start_services(self) -> None:
        self.services.start()

    def services_running(self) -> bool:
        return self.services.running()

    def run_release(self, release: Path, args: Sequence[str], timeout_s: float) -> tuple[int, str]:
        command = [str(release / "bin" / "sigforge")]
        if self.config_file:
            command += ["--config", self.config_file]
        try:
            done = subprocess.run(
                [*command, *args], stdin=subprocess.DEVNULL, capture_output=True, env=self.env, timeout=timeout_s,
                check=False, **_as_user(self.run_as),
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            return 124, f"timed out after {timeout_s:g} s: {(exc.stderr or b'').decode(errors='replace')[-2000:]}"
        except OSError as exc:
            return 127, f"cannot run {command[0]}: {exc.strerror}"
        return done.returncode, (done.stdout + done.stderr).decode(errors="replace")[-4000:]

    def wait_healthy(self, version: str, timeout_s: float) -> tuple[bool, str]:
        deadline = time.monotonic() + timeout_s
        last = "no answer yet"
        while True:
            try:
                with urllib.request.urlopen(self.ready_url, timeout=5) as response:  # noqa: S310 - our own loopback URL
                    answered = response.headers.get(VERSION_HEADER)
                    if response.status == 200 and answered == version:
                        return True, f"ready, version {answered}"
                    last = f"HTTP {response.status} from version {answered}"
            except urllib.error.HTTPError as exc:
                last = f"HTTP {exc.code}: {exc.read()[:500].decode(errors='replace')}"
            except OSError as exc:
                last = f"no answer: {exc}"
            if not self.services.running():
                return False, f"the services are not running ({last})"
            if time.monotonic() >= deadline:
                return False, last
            time.sleep(0.2)
