"""Who owns what the updater writes: a root updater never leaves root-owned files in the service user's data.

On a systemd box the updater runs as root (it stops and starts units) while the services run as the ``sigforge``
system user, which owns the data directory. Anything root created there — the update journal and history, database
backups, a restored SQLite database and its ``-wal``/``-shm`` files, the migrated database — would later be
unwritable (or unreadable) for the services: SQLite then fails with "attempt to write a readonly database" on the
next start. So the updater (a) runs the releases' own commands (migrations, restores) as the data directory's owner
and (b) hands every file it wrote itself over to that owner before it returns.

Invariant: ownership is only ever *given* to the data directory's owner, never taken; a process that is not root
has nothing to hand over (it can only create files it owns itself).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Owner:
    """A user and group to run as and to hand files to."""

    uid: int
    gid: int


def data_owner(data_dir: Path) -> Owner | None:
    """The owner of ``data_dir`` when this process is root and the directory belongs to someone else; else None
    (nothing to hand over, nobody to switch to)."""
    if os.geteuid() != 0:
        return None
    try:
        st = data_dir.stat()
    except OSError:
        return None
    return None if st.st_uid == 0 else Owner(st.st_uid, st.st_gid)


def hand_over(paths: Iterable[Path], owner: Owner | None) -> int:
    """Give ``paths`` (and, for directories, everything below them) to ``owner``; links are changed, not followed.

    Returns:
        How many entries changed owner (absent paths are skipped: the caller lists what *may* exist).
    """
    if owner is None:
        return 0
    changed = 0

    def give(path: str) -> None:
        nonlocal changed
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if (st.st_uid, st.st_gid) != (owner.uid, owner.gid):
            os.chown(path, owner.uid, owner.gid, follow_symlinks=False)
            changed += 1

    for path in paths:
        give(str(path))
        if path.is_dir() and not path.is_symlink():
            for top, dirs, files in os.walk(path):
                for name in (*dirs, *files):
                    give(f"{top}/{name}")
    return changed
