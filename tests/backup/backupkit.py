"""Helpers for the backup tests: a populated box, table snapshots, and rewriting an archive to tamper with it."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zstandard
from sqlalchemy import select

from sigforge.bundles.keys import SigningKey
from sigforge.db import migrate
from sigforge.db.models import Base, TranslationStatus
from sigforge.db.repositories import ArtifactRepository, TranslationRepository
from sigforge.db.session import Database
from sigforge.services.context import Actor
from sigforge.services.toolchains import ToolchainRegistry
from sigforge.services.translations import NewTranslation, TranslationService
from sigforge.settings import LimitSettings, Settings, load_settings
from sigforge.toolchains.runner import ProcessRunner
from support import FIR_DECIMATE
from toolchainkit import install_trust, make_bundle

ACTOR = Actor("test")
Members = list[tuple[tarfile.TarInfo, bytes]]


def box_settings(data_dir: Path, database_url: str = "", node: str = "node-a") -> Settings:
    env = {"SIGFORGE_DATA_DIR": str(data_dir), "SIGFORGE_TOOLCHAINS_NODE": node}
    if database_url:
        env["SIGFORGE_DATABASE_URL"] = database_url
    return load_settings(env=env)


def open_db(settings: Settings) -> Database:
    return Database.from_url(settings.database_url)


def populate(settings: Settings, keys: dict[str, SigningKey], tmp: Path, *, toolchain: bool = True) -> list[str]:
    """Migrate, install a trust root, import a toolchain, and make translations (two with artifacts)."""
    db = open_db(settings)
    try:
        migrate.upgrade(db)
        install_trust(settings.trust_path, keys)
        if toolchain:
            ToolchainRegistry(db, settings, ProcessRunner()).import_bundle(make_bundle(tmp, keys["toolchain"]), ACTOR)
        ids = []
        for n in range(3):
            with db.scope() as session:
                service = TranslationService(session, limits=LimitSettings(), actor=ACTOR)
                source = FIR_DECIMATE + f"# µ-law note {n}\n"
                ids.append(service.create(NewTranslation(source=source, frame_length=64 * (n + 1))).id)
        for n, tid in enumerate(ids[:2]):
            with db.scope() as session:
                content = bytes(range(256)) * 40 + os.urandom(1000) + str(n).encode()
                digest = ArtifactRepository(session).put(content, "application/gzip")
                repo = TranslationRepository(session)
                assert repo.claim(tid, f"job-{n}")
                assert repo.finish(tid, status=TranslationStatus.VERIFIED, artifact_sha256=digest,
                                   report={"max_abs_error": 1.25e-7, "bit_exact": False, "note": "é"},
                                   max_abs_error=1.25e-7)  # fmt: skip
        return ids
    finally:
        db.dispose()


def snapshot(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order (read with plain queries, independent of the dump code)."""
    with db.engine.connect() as conn:
        return {
            t.name: [tuple(r) for r in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in Base.metadata.sorted_tables
        }


def artifact_checksums(db: Database) -> dict[str, str]:
    """Artifact key -> SHA-256 of its stored content, computed now."""
    with db.engine.connect() as conn:
        table = Base.metadata.tables["artifacts"]
        rows = conn.execute(select(table.c.sha256, table.c.content))
        return {key: hashlib.sha256(content).hexdigest() for key, content in rows}


def read_members(archive: Path) -> Members:
    data = zstandard.ZstdDecompressor().stream_reader(archive.open("rb")).read()
    out: Members = []
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        for member in tar:
            fh = tar.extractfile(member)
            out.append((member, fh.read() if fh else b""))
    return out


def write_members(archive: Path, members: Members) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(zstandard.ZstdCompressor(write_checksum=True).compress(buf.getvalue()))


def rewrite(archive: Path, out: Path, change: Callable[[Members], Members]) -> Path:
    write_members(out, change(read_members(archive)))
    return out
