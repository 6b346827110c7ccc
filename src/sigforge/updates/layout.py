"""The on-box layout shared with the installer: ``<prefix>/opt/sigforge/releases/<version>/`` (a release tree, at
least an executable ``bin/sigforge``) and ``<prefix>/opt/sigforge/current`` -> ``releases/<version>``, a relative
symbolic link that is switched atomically (a new link beside it, then ``rename``)."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sigforge.fsutil import fsync_dir

_VERSION_DIR = re.compile(r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$")


class Layout:
    """Paths of one installation below ``prefix`` (``/`` in production, a temporary directory in tests)."""

    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix
        self.root = prefix / "opt" / "sigforge"
        self.releases = self.root / "releases"
        self.current = self.root / "current"

    def release(self, version: str) -> Path:
        if not _VERSION_DIR.match(version):
            raise ValueError(f"not a release version: {version!r}")
        return self.releases / version

    def binary(self, release: Path) -> Path:
        return release / "bin" / "sigforge"

    def current_version(self) -> str | None:
        """The version ``current`` points at, or None when there is no ``current`` link."""
        try:
            target = self.current.readlink()
        except FileNotFoundError:
            return None
        name = Path(target).name
        return name if _VERSION_DIR.match(name) else None

    def installed(self) -> list[str]:
        """Every complete release directory, oldest first."""
        if not self.releases.is_dir():
            return []
        names = [p.name for p in self.releases.iterdir() if _VERSION_DIR.match(p.name) and p.is_dir()]
        return sorted(names, key=lambda n: tuple(int(x) for x in n.split(".")))

    def switch(self, version: str) -> None:
        """Point ``current`` at ``releases/<version>`` in one atomic rename (readers see the old or the new link)."""
        release = self.release(version)
        if not self.binary(release).is_file():
            raise FileNotFoundError(f"{release} is not a complete release (no bin/sigforge)")
        if self.current_version() == version:
            return
        tmp = self.root / f".current.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(f"releases/{version}")
        tmp.replace(self.current)
        fsync_dir(self.root)
