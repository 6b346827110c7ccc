"""Real, cheap release trees and signed release bundles for the update tests, and a box to update.

A release tree is "site Python": ``lib/sigforge`` is a COPY of ``src/sigforge`` with ``__version__`` patched, its
migrations copied to ``lib/sigforge/_migrations`` (where ``db.migrate.migrations_dir`` looks in an installed
package) plus the release's own test migrations, and ``bin/sigforge`` is a POSIX sh launcher that runs the copy with
the test venv's Python. A box is a temporary PREFIX with ``opt/sigforge/releases/1.0.0`` copied in and ``current``
pointing at it (what the installer lays out), a data directory with the development trust root of per-session keys,
and ``current/bin/sigforge up`` run detached with a pidfile (the updater's no-systemd mode).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sigforge.bundles.build import build_bundle
from sigforge.bundles.keys import SigningKey
from support import REPO_ROOT, child_env
from toolchainkit import install_trust

SRC = REPO_ROOT / "src" / "sigforge"
FAST = {
    "SIGFORGE_BROKER_HEARTBEAT_INTERVAL_S": "0.2",
    "SIGFORGE_BROKER_HEARTBEAT_TTL_S": "2",
    "SIGFORGE_BROKER_POLL_INTERVAL_S": "0.05",
    "SIGFORGE_BROKER_PROCESSES": "1",
    "SIGFORGE_BROKER_THREADS": "1",
    "SIGFORGE_LOG_LEVEL": "warning",
}

MIGRATION = '''"""{doc}

Revision ID: {rev}
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

revision = "{rev}"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "{table}",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("text", sa.Text(), nullable=True),
    )
    op.execute("INSERT INTO {table} (text) VALUES ('added by {rev}')")
{extra}

def downgrade() -> None:
    op.drop_table("{table}")
'''

# v2': alters data and the schema, then fails halfway
RAISES = """    op.execute("UPDATE translations SET entry = 'clobbered'")
    op.execute("DELETE FROM artifacts WHERE sha256 NOT IN (SELECT artifact_sha256 FROM translations"
               " WHERE artifact_sha256 IS NOT NULL)")
    raise RuntimeError("migration 0003 fails halfway (test release)")
"""

LAUNCHER = """#!/bin/sh
# A test release's launcher: run this release's copy of sigforge with the test venv's Python.
root=$(cd "$(dirname "$0")/.." && pwd -P)
{refuse}PYTHONPATH="$root/lib${{PYTHONPATH:+:$PYTHONPATH}}" exec {python} -m sigforge "$@"
"""
REFUSE_UP = """for arg in "$@"; do
  if [ "$arg" = up ]; then echo "this release is broken: it does not start" >&2; exit 1; fi
done
"""


@dataclass(frozen=True)
class Releases:
    keys: dict[str, SigningKey]
    v1: Path  # release trees
    v2: Path
    v3: Path
    v2_bundle: Path  # signed release bundles
    v2_migration_raises: Path
    v2_unhealthy: Path
    v2_expired: Path
    v2_bad_signature: Path
    v0_9_bundle: Path
    v1_bundle: Path


def _repo_head() -> str:
    from alembic.script import ScriptDirectory

    head = ScriptDirectory(str(REPO_ROOT / "migrations")).get_current_head()
    assert head is not None
    return head


#: The schema head of the code under test (v1's schema); the test releases add their own migrations on top of it, with
#: ids that can never collide with the repository's next real migration.
REPO_HEAD = _repo_head()
V2_REV, V3_REV = "t9002", "t9003"


def migration(rev: str, down: str, table: str, *, raises: bool = False) -> str:
    return MIGRATION.format(doc=f"test release migration {rev}", rev=rev, down=down, table=table,
                            extra=RAISES if raises else "")  # fmt: skip


def make_tree(dest: Path, version: str, *, migrations: dict[str, str] | None = None, broken_up: bool = False) -> Path:
    pkg = dest / "lib" / "sigforge"
    shutil.copytree(SRC, pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    init = pkg / "__init__.py"
    text = init.read_text()
    assert '__version__ = "' in text
    init.write_text(text.replace(text[text.index('__version__ = "') :].split("\n", 1)[0], f'__version__ = "{version}"'))
    shutil.copytree(REPO_ROOT / "migrations", pkg / "_migrations", ignore=shutil.ignore_patterns("__pycache__"))
    for name, body in (migrations or {}).items():
        (pkg / "_migrations" / "versions" / name).write_text(body)
    launcher = dest / "bin" / "sigforge"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(LAUNCHER.format(python=sys.executable, refuse=REFUSE_UP if broken_up else ""))
    for path in dest.rglob("*"):
        path.chmod(0o755 if path.is_dir() or path == launcher else 0o644)
    return dest


def bundle(tree: Path, out: Path, version: str, key: SigningKey, *, expired: bool = False,
           compression: str = "zstd", min_installed: str | None = None) -> Path:  # fmt: skip
    now = datetime.now(UTC)
    created, expires = (now - timedelta(days=2), now - timedelta(days=1)) if expired else (
        now - timedelta(minutes=5), now + timedelta(days=30))  # fmt: skip
    build_bundle(source=tree, out=out, kind="release", name="sigforge", version=version, product="sigforge",
                 host_arch="any", created=created, expires=expires, keys=[key], compression=compression,  # type: ignore[arg-type]
                 min_installed_version=min_installed)  # fmt: skip
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Box:
    """One appliance in a temporary PREFIX, running in no-systemd (pidfile) mode."""

    def __init__(self, root: Path, keys: dict[str, SigningKey], *, database_url: str | None = None) -> None:
        self.prefix = root / "prefix"
        self.data = root / "data"
        self.releases = self.prefix / "opt" / "sigforge" / "releases"
        self.current = self.prefix / "opt" / "sigforge" / "current"
        self.port = free_port()
        # None: the default SQLite database in the data directory; else (PostgreSQL) given to every process
        self.database_url = database_url or f"sqlite:///{self.data / 'sigforge.sqlite3'}"
        extra = {"SIGFORGE_DATABASE_URL": database_url} if database_url else {}
        self.env = child_env(SIGFORGE_DATA_DIR=str(self.data), SIGFORGE_SERVER_PORT=str(self.port), **FAST, **extra)
        self.data.mkdir(parents=True)
        install_trust(self.data / "trust", keys)

    # -- layout ------------------------------------------------------------------------------------------------------
    def install(self, tree: Path, version: str) -> None:
        """What the installer does: the release tree at releases/<version>, current -> it."""
        self.releases.mkdir(parents=True)
        shutil.copytree(tree, self.releases / version, symlinks=True)
        self.current.symlink_to(f"releases/{version}")

    def current_version(self) -> str:
        return Path(os.readlink(self.current)).name

    # -- processes ---------------------------------------------------------------------------------------------------
    def sigforge(self, *args: str, binary: Path | None = None, timeout: float = 300,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:  # fmt: skip
        exe = binary or self.current / "bin" / "sigforge"
        return subprocess.run([str(exe), *args], env={**self.env, **(env or {})}, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip

    def update(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        action, *rest = args
        return self.sigforge("update", action, *rest, "--prefix", str(self.prefix), "--services", "pidfile",
                             "--health-timeout", "60", env=env)  # fmt: skip

    def services(self):  # type: ignore[no-untyped-def]
        from sigforge.cli.service_manager import PidfileServices

        return PidfileServices(self.current, self.data, env=self.env, stop_timeout_s=60)

    def start(self) -> None:
        self.services().start()
        self.wait_ready(self.current_version())

    def stop(self) -> None:
        self.services().stop()

    def ready(self) -> tuple[int, str | None]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/readyz", timeout=3) as r:
                return r.status, r.headers.get("x-sigforge-version")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers.get("x-sigforge-version")
        except OSError:
            return 0, None

    def wait_ready(self, version: str, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while self.ready() != (200, version):
            assert time.monotonic() < deadline, f"{version} did not become ready: {self.ready()}; {self.log()}"
            time.sleep(0.2)

    def log(self) -> str:
        path = self.data / "logs" / "sigforge-up.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else "(no log)"

    # -- data --------------------------------------------------------------------------------------------------------
    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(self.data / "sigforge.sqlite3", timeout=30)

    def create_data(self) -> None:
        """Rows and an artifact, written through the repositories while the service runs (schema of v1)."""
        import hashlib

        from sigforge.db.models import Translation
        from sigforge.db.repositories import ArtifactRepository, AuditRepository, TranslationRepository
        from sigforge.db.session import Database

        db = Database.from_url(self.database_url)
        try:
            with db.scope() as session:
                sha = ArtifactRepository(session).put(b"\x1f\x8b artifact bytes " * 50, "application/gzip")
                for i in range(3):
                    source = f"def f(x):\n    return {i} * x\n"
                    TranslationRepository(session).add(Translation(
                        id=f"00000000-0000-0000-0000-00000000000{i}", status="verified" if i == 0 else "queued",
                        source=source, source_sha256=hashlib.sha256(source.encode()).hexdigest(), entry="f",
                        target="host-c", input_dtype="float32", frame_length=64, options={"n": i},
                        artifact_sha256=sha if i == 0 else None, report={"ok": True} if i == 0 else None,
                    ))  # fmt: skip
                AuditRepository(session).record(actor="test", action="test.data", subject_type="test", subject_id="1")
        finally:
            db.dispose()

    def snapshot(self) -> dict[str, Any]:
        with self.db() as conn:
            return {
                table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
                for table in ("translations", "artifacts", "toolchains")
            }

    def schema(self) -> tuple[str | None, set[str]]:
        with self.db() as conn:
            revision = conn.execute("SELECT version_num FROM alembic_version").fetchone()
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return (revision[0] if revision else None), tables

    def audit_actions(self) -> list[str]:
        with self.db() as conn:
            return [r[0] for r in conn.execute("SELECT action FROM audit_events WHERE subject_type = 'update' "
                                               "ORDER BY occurred_at, id")]  # fmt: skip

    def history(self) -> list[dict[str, Any]]:
        path = self.data / "updates" / "history.json"
        return json.loads(path.read_text()) if path.exists() else []

    def journal_exists(self) -> bool:
        return (self.data / "updates" / "journal.json").exists()


@contextlib.contextmanager
def running_v1(root: Path, keys: dict[str, SigningKey], v1: Path, *, database_url: str | None = None) -> Iterator[Box]:
    """A v1 box in ``root`` (pidfile mode), its schema migrated (as the installer does), running, with rows and an
    artifact; stopped afterwards whatever happened. ``database_url``: PostgreSQL instead of the default SQLite."""
    box = Box(root, keys, database_url=database_url)
    box.install(v1, "1.0.0")
    try:
        if database_url:  # SQLite is migrated by `up` itself; a server database is migrated first, as install.sh does
            migrated = box.sigforge("db", "upgrade")
            assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        box.start()
        box.create_data()
        yield box
    finally:
        box.stop()
