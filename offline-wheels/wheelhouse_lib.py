"""Shared by lock.py, fill.py and sbom.py: the four targets, their wheel tags, the lock files and a clean pip.

A *target* is one CPython minor version on one Linux machine architecture, with glibc no older than ``GLIBC_FLOOR``
(manylinux_2_28: RHEL 8, Debian 10, Ubuntu 20.04 and newer). The lock holds, for every pinned distribution, the
hash of the one wheel pip selects for each target at that floor.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import sys
from dataclasses import dataclass
from pathlib import Path

try:
    from packaging.requirements import Requirement
    from packaging.tags import Tag, compatible_tags, cpython_tags
    from packaging.utils import canonicalize_name, parse_wheel_filename
    from packaging.version import Version
except ImportError:  # a bare interpreter with pip only: pip vendors packaging
    from pip._vendor.packaging.requirements import Requirement  # type: ignore[no-redef]
    from pip._vendor.packaging.tags import Tag, compatible_tags, cpython_tags  # type: ignore[no-redef]
    from pip._vendor.packaging.utils import canonicalize_name, parse_wheel_filename  # type: ignore[no-redef]
    from pip._vendor.packaging.version import Version  # type: ignore[no-redef]

__all__ = ["Requirement", "Tag", "Version", "canonicalize_name", "parse_wheel_filename"]  # re-exported

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
REQUIREMENTS_IN = HERE / "requirements.in"
LOCK = HERE / "requirements.lock"
LOCK_JSON = HERE / "requirements.lock.json"
WHEELHOUSE = HERE / "wheelhouse"
CACHE = HERE / ".cache"

GLIBC_FLOOR = (2, 28)
PYTHONS = ("3.11", "3.12")
MACHINES = ("x86_64", "aarch64")


@dataclass(frozen=True)
class Target:
    python: str  # "3.11"
    machine: str  # "x86_64" | "aarch64"

    @property
    def name(self) -> str:
        return f"cp{self.python.replace('.', '')}-{self.machine}"

    @property
    def python_tuple(self) -> tuple[int, int]:
        major, minor = self.python.split(".")
        return int(major), int(minor)

    def platforms(self, glibc: tuple[int, int] = GLIBC_FLOOR) -> list[str]:
        """Platform tags a box of this machine with glibc >= ``glibc`` accepts, best first (as pip orders them)."""
        tags = [f"manylinux_{glibc[0]}_{minor}_{self.machine}" for minor in range(glibc[1], 16, -1)]
        tags.append(f"manylinux2014_{self.machine}")
        if self.machine == "x86_64":
            tags += ["manylinux2010_x86_64", "manylinux1_x86_64"]
        return tags

    def tags(self, glibc: tuple[int, int] = GLIBC_FLOOR) -> list[Tag]:
        platforms = self.platforms(glibc)
        py = self.python_tuple
        interpreter = f"cp{py[0]}{py[1]}"
        return [*cpython_tags(py, platforms=platforms), *compatible_tags(py, interpreter, platforms=platforms)]

    def pip_platform_args(self, glibc: tuple[int, int] = GLIBC_FLOOR) -> list[str]:
        """``pip download`` flags that make pip pick wheels for this target (pip does not expand manylinux tags)."""
        args = ["--only-binary=:all:", "--implementation", "cp", "--python-version", self.python]
        for plat in self.platforms(glibc):
            args += ["--platform", plat]
        return args

    def marker_environment(self) -> dict[str, str]:
        """What PEP 508 markers see on this target (patch level .0: a ``<3.11.N`` marker counts as true)."""
        return {
            "implementation_name": "cpython",
            "implementation_version": f"{self.python}.0",
            "os_name": "posix",
            "platform_machine": self.machine,
            "platform_python_implementation": "CPython",
            "platform_release": "",
            "platform_system": "Linux",
            "platform_version": "",
            "python_full_version": f"{self.python}.0",
            "python_version": self.python,
            "sys_platform": "linux",
        }


ALL_TARGETS = tuple(Target(py, machine) for py in PYTHONS for machine in MACHINES)


def current_target() -> Target:
    """The running interpreter's target; an explained error when it is none of the four."""
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    machine = platform.machine()
    machine = {"amd64": "x86_64", "arm64": "aarch64"}.get(machine.lower(), machine)
    if (
        sys.implementation.name != "cpython"
        or python not in PYTHONS
        or machine not in MACHINES
        or not sys.platform.startswith("linux")
    ):
        raise SystemExit(
            f"this interpreter ({sys.implementation.name} {python} on {sys.platform}/{machine}) is not one "
            f"of the locked targets: CPython {'/'.join(PYTHONS)} on Linux {'/'.join(MACHINES)}"
        )
    return Target(python, machine)


def parse_targets(text: str) -> list[Target]:
    """``all``, ``current`` or a comma list of names such as ``cp311-x86_64,cp312-aarch64``."""
    by_name = {t.name: t for t in ALL_TARGETS}
    chosen: list[Target] = []
    for item in (part.strip() for part in text.split(",")):
        if item == "all":
            found = list(ALL_TARGETS)
        elif item == "current":
            found = [current_target()]
        elif item in by_name:
            found = [by_name[item]]
        else:
            raise SystemExit(f"unknown target {item!r}: use all, current or {', '.join(by_name)}")
        chosen += [t for t in found if t not in chosen]
    return chosen


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def clean_pip_env(index_url: str | None = None) -> dict[str, str]:
    """An environment in which pip reads no config file and none of the host's PIP_* settings but certificates
    and timeouts (this build host's global config adds extra indexes and find-links that must not leak in)."""
    keep = {"PIP_CERT", "PIP_CLIENT_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_RETRIES", "PIP_PROXY", "PIP_TRUSTED_HOST"}
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k in keep}
    env["PIP_CONFIG_FILE"] = os.devnull
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if index_url:
        env["PIP_INDEX_URL"] = index_url
    return env


# --- the lock --------------------------------------------------------------------------------------------------------

_HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


@dataclass(frozen=True)
class Pin:
    requirement: Requirement  # name==version [; marker]
    hashes: frozenset[str]

    @property
    def name(self) -> str:
        return canonicalize_name(self.requirement.name)

    @property
    def version(self) -> str:
        (spec,) = self.requirement.specifier
        return spec.version

    def applies_to(self, target: Target) -> bool:
        marker = self.requirement.marker
        return marker is None or marker.evaluate(target.marker_environment())


def read_lock(path: Path = LOCK) -> list[Pin]:
    """Parse requirements.lock (pip's format: backslash continuations, one ``--hash`` per wheel)."""
    logical: list[str] = []
    current = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split(" #", 1)[0].strip() if not raw.lstrip().startswith("#") else ""
        if not line:
            continue
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        logical.append(current + line)
        current = ""
    if current:
        logical.append(current)
    pins = []
    for line in logical:
        hashes = frozenset(_HASH.findall(line))
        spec = _HASH.sub("", line).strip()
        req = Requirement(spec)
        specs = list(req.specifier)
        if len(specs) != 1 or specs[0].operator != "==":
            raise ValueError(f"requirements.lock: {spec!r} is not pinned with ==")
        pins.append(Pin(req, hashes))
    return pins


def read_lock_json(path: Path = LOCK_JSON) -> dict:  # type: ignore[type-arg]
    return json.loads(path.read_text(encoding="utf-8"))
