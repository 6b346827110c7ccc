"""Build the frozen ``sigforge`` binary once per content hash, shared by test runs, xdist workers and the bench.

The key hashes everything that goes into the binary: ``src/``, ``appliance/`` (spec and entry script),
``migrations/``, ``pyproject.toml`` (not the Markdown files among them), plus the Python and PyInstaller
versions. The build lands in
``.cache/frozen/<key>/dist`` (``sigforge/sigforge`` for onedir, ``sigforge-onefile`` for onefile); a file lock
serialises builders, and a finished build is marked by a ``built.ok`` file written last. Both targets come from one
PyInstaller run (one analysis, about 2 of its 3-4 minutes on 2 cores), whichever is asked for first.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "frozen"
SPEC = REPO_ROOT / "appliance" / "sigforge.spec"
INPUTS = ("src", "appliance", "migrations", "pyproject.toml")
NOT_BUILT = {"sigforge.example.toml"}  # files under INPUTS that do not go into the binary (besides *.md)
BUILD_TIMEOUT_S = 900


def pyinstaller_version() -> str | None:
    try:
        import PyInstaller
    except ImportError:
        return None
    return str(PyInstaller.__version__)


@functools.cache  # once per process: an edit in the middle of a test run must not rebuild (and delete) the binary
def content_key() -> str:
    digest = hashlib.sha256(f"{sys.version}|{pyinstaller_version()}".encode())
    for name in INPUTS:
        root = REPO_ROOT / name
        paths = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for path in paths:
            if "__pycache__" in path.parts or path.suffix in (".pyc", ".md") or path.name in NOT_BUILT:
                continue
            digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def binary_path(key: str, target: str) -> Path:
    dist = CACHE / key / "dist"
    return dist / "sigforge" / "sigforge" if target == "onedir" else dist / "sigforge-onefile"


def build(target: str) -> tuple[Path, float | None]:
    """The binary for ``target`` ("onedir" or "onefile"), built if needed; and the build time (None: cached)."""
    key = content_key()
    exe = binary_path(key, target)
    done = CACHE / key / "built.ok"
    CACHE.mkdir(parents=True, exist_ok=True)
    with (CACHE / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.is_file() and exe.is_file():
            return exe, None
        for old in CACHE.iterdir():  # an earlier content's build is dead weight (hundreds of MB)
            if old.is_dir() and old.name != key:
                shutil.rmtree(old, ignore_errors=True)
        (CACHE / key).mkdir(exist_ok=True)
        work = CACHE / key / "build"
        log = CACHE / key / "build.log"
        env = {**os.environ, "SIGFORGE_FREEZE_TARGETS": "onedir,onefile"}
        start = time.monotonic()
        with log.open("wb") as out:
            proc = subprocess.run(
                [sys.executable, "-m", "PyInstaller", "--noconfirm", "--clean", "--log-level", "WARN",
                 "--distpath", str(CACHE / key / "dist"), "--workpath", str(work), str(SPEC)],
                cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=BUILD_TIMEOUT_S, check=False,
            )  # fmt: skip
        elapsed = time.monotonic() - start
        if proc.returncode != 0 or not all(binary_path(key, t).is_file() for t in ("onedir", "onefile")):
            raise RuntimeError(f"PyInstaller failed ({proc.returncode}); log: {log}\n{log.read_text()[-4000:]}")
        shutil.rmtree(work, ignore_errors=True)
        done.write_text(f"{elapsed:.1f}\n")
        return exe, elapsed
