"""``sigforge backup create|verify|restore``: signed, checksummed backups of this box (see docs/backup.md).

- ``create --out FILE`` dumps the database (a consistent snapshot; the service may keep running), the trust
  directory and the config file in use, signs the archive with this box's backup key (made on first use; its
  fingerprint is printed: record it off the box) or ``--key``, and writes FILE atomically.
- ``verify FILE`` checks the signature and every file; the key is ``--key PUBFILE``, ``--fingerprint HEX`` or this
  box's own backup key.
- ``restore FILE`` verifies as it unpacks, refuses another sigforge version or schema, checks the free space, and
  restores into an empty data directory and database (``--force`` moves the old data directory aside / drops the
  database first). Stop the service and workers before restoring.

Exit codes: 0 ok, 1 the archive was rejected (the reason is printed), 2 bad input, 3 the box is not ready (target
not empty, not enough space, schema not migrated).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from sigforge.logging import configure_logging
from sigforge.services.backup import BackupService
from sigforge.services.context import Actor
from sigforge.settings import Settings, find_config_file

ACTOR = Actor("cli")
EXIT_OK = 0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    backup = sub.add_parser("backup", help="signed backups of this box: create, verify, restore")
    actions = backup.add_subparsers(dest="backup_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="write a signed backup archive (safe while the service runs)")
    create.add_argument("--out", required=True, type=Path, metavar="FILE")
    create.add_argument("--key", type=Path, metavar="KEYFILE", help="sign with this private key, not the box's own")
    verify = actions.add_parser("verify", help="check an archive's signature and every file's checksum")
    restore = actions.add_parser("restore", help="restore an archive into an empty data directory and database")
    for p in (verify, restore):
        p.add_argument("archive", type=Path, metavar="FILE")
        which = p.add_mutually_exclusive_group()
        which.add_argument("--key", type=Path, metavar="PUBFILE", help="the backup public key to trust")
        which.add_argument("--fingerprint", metavar="HEX", help="the backup key fingerprint `create` printed")
    restore.add_argument("--force", action="store_true",
                         help="move a non-empty data directory aside and drop a non-empty database first")  # fmt: skip


def run_backup(args: argparse.Namespace, settings: Settings) -> int:
    configure_logging("warning", "console")
    service = BackupService(settings, ACTOR, config_file=find_config_file(args.config, os.environ))
    command = args.backup_command
    if command == "create":
        created = service.create(args.out, key_file=args.key)
        print(f"backup {created.backup_id} written to {created.path}: {created.files} files, "
              f"{created.unpacked_bytes} bytes unpacked")  # fmt: skip
        for table, rows in created.rows.items():
            print(f"  {table}: {rows} rows")
        made = " (a new key was generated for this box)" if created.key_created else ""
        print(f"signed by backup key {created.keyid}{made}\nrecord this fingerprint off the box to verify or restore "
              "the backup after losing the data directory")  # fmt: skip
        return EXIT_OK
    trusted = service.trusted_key(args.key, args.fingerprint)
    if command == "verify":
        verified = service.verify(args.archive, trusted)
        info = verified.info
        print(f"OK: backup {info.backup_id} of node {info.node}, made {info.created.isoformat(timespec='seconds')} by "
              f"sigforge {info.sigforge_version} (schema {info.schema_revision}); {len(info.files)} files checked; "
              f"signed by {verified.keyid}")  # fmt: skip
        for note in info.toolchains:
            print(f"  toolchain {note.node}/{note.name} {note.version} ({note.state}): its bundle is not in the backup")
        return EXIT_OK
    restored = service.restore(args.archive, trusted, force=args.force)
    print(f"restored backup {restored.info.backup_id} (made {restored.info.created.isoformat(timespec='seconds')}, "
          f"signed by {restored.keyid})")  # fmt: skip
    for table, rows in restored.rows.items():
        print(f"  {table}: {rows} rows")
    for path in restored.moved_aside:
        print(f"  moved aside: {path}")
    for name in restored.quarantined:
        print(f"  toolchain {name}: quarantined until its bundle is imported again (`sigforge toolchain import`)")
    if restored.config != "none":
        print(f"  the backed-up config file is in {settings.data_path}/restored-config/ ({restored.config} from the "
              "one in use)")  # fmt: skip
    return EXIT_OK
