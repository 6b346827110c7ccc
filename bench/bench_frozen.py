"""Size and start-up time of the frozen ``sigforge`` binary (onedir and onefile) against ``python -m sigforge``.

Usage::

    .venv/bin/python bench/bench_frozen.py [--rounds 5]

Builds both binaries once per content hash (``tests/frozen/frozen_build.py``: ``.cache/frozen/<key>/``, shared
with the test), then times, in the same run and on the same data directory:

* ``--version`` (argument parsing only: the interpreter's and the bootloader's start-up);
* ``toolchain list`` (settings, database, registry: a typical short CLI command);
* ``serve``: from exec to the first ``/healthz`` 200 (imports the web app, migrations check, uvicorn);
* the sandbox's PID-namespace init: one sandboxed ``/bin/true`` through ``ProcessRunner`` per round, with the
  init started as ``python -I -S -c`` (non-frozen) or as ``sigforge __sandbox_init__`` (the onedir and onefile
  binaries; the runner is told it is frozen), so the difference is the per-run overhead of the frozen init.

Medians of ``--rounds`` runs; prints markdown. Ratios are frozen / ``python -m sigforge``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests" / "frozen"), str(REPO / "tests")]

from frozen_build import build  # noqa: E402

from sigforge.settings import load_settings  # noqa: E402


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 1e6


def _median_s(argv: list[str], env: dict[str, str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _first_200_s(argv: list[str], env: dict[str, str], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        port = _free_port()
        start = time.perf_counter()
        proc = subprocess.Popen([*argv, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        try:
            while True:
                if proc.poll() is not None:
                    raise SystemExit(f"{argv} serve exited with {proc.returncode}")
                try:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                        if r.status == 200:
                            break
                except OSError:
                    time.sleep(0.01)
            times.append(time.perf_counter() - start)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(30)
    return statistics.median(times)


def _unpacked_onefile_env(onefile: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """A running onefile ``serve`` and its Python process's ``_PYI_*`` variables (where it unpacked itself).

    Inside the onefile binary, the runner hands exactly these to the init; the bench process borrows them.
    """
    port = _free_port()
    proc = subprocess.Popen([onefile, "serve", "--host", "127.0.0.1", "--port", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
        for child in children.read_text().split() if children.exists() else []:
            raw = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            found = dict(item.decode().split("=", 1) for item in raw if item.startswith(b"_PYI_"))
            if "_PYI_APPLICATION_HOME_DIR" in found:
                return proc, found
        time.sleep(0.1)
    proc.kill()
    raise SystemExit("the onefile binary did not unpack itself within 120 s")


def _init_overhead_s(executable: str | None, rounds: int, env: dict[str, str]) -> float:
    """Median wall time of one sandboxed ``/bin/true`` (isolate), the init started from ``executable``."""
    from sigforge.toolchains import runner as runner_mod

    saved = sys.executable, getattr(sys, "frozen", None)
    server = None
    try:
        if executable is not None:
            sys.executable, sys.frozen = executable, True  # type: ignore[attr-defined]
            if executable.endswith("-onefile"):
                server, pyi = _unpacked_onefile_env(executable, env)
                os.environ.update(pyi)
        runner_mod._probe_cache.clear()
        runner = runner_mod.ProcessRunner("isolate")
        times = []
        with tempfile.TemporaryDirectory() as tmp:
            for _ in range(rounds + 1):
                res = runner.run(["/bin/true"], cwd=Path(tmp), timeout_s=30, memory_mb=256, max_file_mb=1)
                if res.returncode != 0:
                    raise SystemExit(f"sandboxed /bin/true failed: {res.stderr!r}")
                times.append(res.duration_s)
        return statistics.median(times[1:])
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)
            server.wait(30)
        for key in [k for k in os.environ if k.startswith("_PYI_")]:
            del os.environ[key]
        sys.executable = saved[0]
        if executable is not None and saved[1] is None:
            del sys.frozen  # type: ignore[attr-defined]
        runner_mod._probe_cache.clear()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    onedir, onedir_build = build("onedir")
    onefile, onefile_build = build("onefile")
    with tempfile.TemporaryDirectory(prefix="sigforge-bench-frozen-") as tmp:
        data = Path(tmp) / "data"
        base = {k: v for k, v in os.environ.items() if not k.startswith("SIGFORGE_")}
        env = {**base, "SIGFORGE_DATA_DIR": str(data)}
        subprocess.run([str(onedir), "db", "upgrade"], env=env, check=True, capture_output=True)
        sys.path.insert(0, str(REPO / "tests"))
        from support import provision_toolchain

        with contextlib.redirect_stdout(sys.stderr):  # stdout is the markdown table only
            provision_toolchain(load_settings(env={"SIGFORGE_DATA_DIR": str(data)}))
        commands = {
            "python -m sigforge": ([sys.executable, "-m", "sigforge"], REPO / "src" / "sigforge", None),
            "frozen onedir": ([str(onedir)], onedir.parent, onedir_build),
            "frozen onefile": ([str(onefile)], onefile, onefile_build),
        }
        rows = {}
        for name, (argv, tree, built) in commands.items():
            rows[name] = (
                _size_mb(tree),
                built,
                _median_s([*argv, "--version"], env, args.rounds),
                _median_s([*argv, "toolchain", "list"], env, args.rounds),
                _first_200_s(argv, env, args.rounds),
                _init_overhead_s(None if name.startswith("python") else argv[0], args.rounds, env),
            )
    print("| build | size MB | build s (one run, both) | `--version` s | `toolchain list` s "
          "| `serve` to first `/healthz` 200 s | sandboxed `/bin/true` s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name, (size, built, version, listing, first, init) in rows.items():
        built_s = "-" if name.startswith("python") else ("cached" if built is None else f"{built:.0f}")
        size_s = "(source only)" if name.startswith("python") else f"{size:.0f}"
        print(f"| {name} | {size_s} | {built_s} | {version:.2f} | {listing:.2f} | {first:.2f} | {init:.3f} |")
    ref = rows["python -m sigforge"]
    print()
    for name in ("frozen onedir", "frozen onefile"):
        row = rows[name]
        extra_ms = (row[5] - ref[5]) * 1e3
        print(f"{name} / python -m sigforge: `--version` {row[2] / ref[2]:.2f}x, `toolchain list` "
              f"{row[3] / ref[3]:.2f}x, first 200 {row[4] / ref[4]:.2f}x, sandbox init {extra_ms:+.0f} ms "
              "per sandboxed process (same run, same machine)")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
