"""Inputs for the install-media tests, all real: a release tree, the offline wheelhouse, the host-gcc toolchain bundle
and the development trust root + release key (``installer/dev_setup.py``'s cache), and a media directory built from
them by ``installer/build_media.py``.

The release is the frozen onedir (``tests/frozen/frozen_build.py``: built once per content hash under
``.cache/frozen``) when PyInstaller is installed, else a "site-Python" release tree like the update tests build
(``tests/updates/releasekit.make_tree``: a copy of ``src/sigforge`` run by the test venv's Python).
``SFTEST_INSTALL_RELEASE=site`` picks the site-Python tree even with PyInstaller (a quick local run).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from realservices import in_ci
from support import REPO_ROOT

for _sub in ("installer", "tests/frozen", "tests/updates"):
    if str(REPO_ROOT / _sub) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT / _sub))

import build_media  # noqa: E402
import dev_setup  # noqa: E402
from frozen_build import build as build_frozen  # noqa: E402
from frozen_build import pyinstaller_version  # noqa: E402
from releasekit import LAUNCHER  # noqa: E402

from sigforge.bundles.trust import encode_root, fingerprint  # noqa: E402

WHEELHOUSE = REPO_ROOT / "offline-wheels" / "wheelhouse"
DEV_CACHE = REPO_ROOT / ".cache" / "dev-toolchain"
CREATED = "2026-01-01T00:00:00Z"
EXPIRES = "2036-01-01T00:00:00Z"


@dataclass(frozen=True)
class Inputs:
    release: Path
    release_kind: str  # "frozen" or "site"
    wheelhouse: Path
    toolchain: Path
    root: Path
    fingerprint: str
    release_key: Path


def wheelhouse() -> Path:
    if (WHEELHOUSE / "SHA256SUMS").is_file():
        return WHEELHOUSE
    message = f"{WHEELHOUSE} is not filled (make wheelhouse)"
    if in_ci():
        pytest.fail(f"{message}, and CI=true forbids skipping the install-media tests")
    pytest.skip(message)


def release_tree(work: Path) -> tuple[Path, str]:
    if os.environ.get("SFTEST_INSTALL_RELEASE") != "site" and pyinstaller_version() is not None:
        return build_frozen("onedir")[0].parent, "frozen"
    if in_ci() and os.environ.get("SFTEST_INSTALL_RELEASE") != "site":
        pytest.fail("PyInstaller is not installed, and CI=true requires the frozen release for the install test")
    return site_tree(work / "site-release"), "site"


def site_tree(dest: Path) -> Path:
    """A site-Python release: ``lib/sigforge`` (a copy of ``src/sigforge`` and its migrations) + the sh launcher.

    The copy splits the PEM markers that the bundle verifier sniffs for (``own-trust``) in string literals, as
    ``releasekit.make_tree`` does (a frozen release carries them compressed).
    """
    pkg = dest / "lib" / "sigforge"
    shutil.copytree(REPO_ROOT / "src" / "sigforge", pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for source in pkg.rglob("*.py"):
        text = source.read_text()
        if "-----BEGIN " in text:
            source.write_text(re.sub(r'(b?)"-----BEGIN ', r'\1"-----BEG" \1"IN ', text))
    shutil.copytree(REPO_ROOT / "migrations", pkg / "_migrations", ignore=shutil.ignore_patterns("__pycache__"))
    launcher = dest / "bin" / "sigforge"
    launcher.parent.mkdir(parents=True)
    launcher.write_text(LAUNCHER.format(python=sys.executable, refuse=""))
    launcher.chmod(0o755)
    return dest


def inputs(work: Path) -> Inputs:
    house = wheelhouse()
    with dev_setup.locked(DEV_CACHE):
        keys = dev_setup.dev_keys(DEV_CACHE)
        toolchain = dev_setup.host_gcc_bundle(DEV_CACHE, keys)
    root = dev_setup.dev_root(keys)
    root_file = work / "root.json"
    root_file.write_bytes(encode_root(root))
    release_key = sorted((DEV_CACHE / "keys").glob("release-*.key"))[0]
    release, kind = release_tree(work)
    return Inputs(release, kind, house, toolchain, root_file, fingerprint(root), release_key)


def build(inp: Inputs, out: Path, *, created: str = CREATED) -> Path:
    args = build_media.parse_args([
        "--out", str(out), "--root", str(inp.root), "--key", str(inp.release_key), "--release", str(inp.release),
        "--wheelhouse", str(inp.wheelhouse), "--toolchain", str(inp.toolchain), "--created", created,
        "--expires", EXPIRES, "--work", str(out.parent),
    ])  # fmt: skip
    return build_media.build(args)
