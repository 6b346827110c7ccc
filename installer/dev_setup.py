"""Development appliance set-up: a local trust root and the host's gcc as a signed, imported toolchain.

``make run`` calls this before ``sigforge up`` (and the test suite uses the same functions), so that a fresh clone
builds translations the way a box does: only with a registry toolchain that was imported from a signed bundle.

The keys it generates are DEVELOPMENT keys, kept in ``<cache>/keys`` on this machine; a production box gets its
trust root from the install media (issue 5) and never trusts these. Everything is idempotent and cached by content:
the bundle is rebuilt only when the builder's sources or the host's compiler packages change.

Usage: ``python installer/dev_setup.py [--config FILE] [--cache DIR]`` (default cache: ``.cache/dev-toolchain``).
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sigforge.bundles.keys import SigningKey, load_signing_key, write_key_pair
from sigforge.bundles.state import atomic_write
from sigforge.bundles.store import ROOT_FILE
from sigforge.bundles.trust import ROLES, SignedRoot, encode_root, make_root_metadata, sign_root
from sigforge.settings import Settings, load_settings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_CACHE = REPO / ".cache" / "dev-toolchain"
# The host packages whose files the host-gcc bundle holds: a change in any of them means a new bundle.
# Development bundles are rebuilt on fresh clones and CI: fast compression (level 3 packs the 440 MB zig tree several
# times faster than the media's level 12, for a somewhat larger file that never leaves this machine).
DEV_ZSTD_LEVEL = "3"
HOST_PACKAGES = ("gcc", "cpp", "binutils", "libc6", "libc6-dev", "linux-libc-dev", "libgcc-s1")


@contextmanager
def locked(cache: Path, name: str = ".lock") -> Iterator[None]:
    """Serialise set-up between processes (parallel test workers, two `make run`s) on ``cache/name``."""
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / name).open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def dev_keys(cache: Path) -> dict[str, SigningKey]:
    """One development key per role, generated once and kept in ``cache/keys`` (private keys 0600)."""
    keys_dir = cache / "keys"
    keys: dict[str, SigningKey] = {}
    for role in ROLES:
        existing = sorted(keys_dir.glob(f"{role}-*.key"))
        if existing:
            keys[role] = load_signing_key(existing[0])
        else:
            key = SigningKey.generate()
            write_key_pair(key, keys_dir, f"{role}-{key.keyid[:16]}")
            keys[role] = key
    return keys


def dev_root(keys: dict[str, SigningKey]) -> SignedRoot:
    """Root metadata version 1 naming the development keys, threshold 1 for every role."""
    meta = make_root_metadata(
        version=1,
        expires=datetime(2099, 1, 1, tzinfo=UTC),
        role_keys_={role: [keys[role].public] for role in ROLES},
        thresholds=dict.fromkeys(ROLES, 1),
    )
    return sign_root(meta, [keys["root"]])


def install_dev_trust(trust_dir: Path, keys: dict[str, SigningKey]) -> None:
    """Install the development root unless a root is installed already (never replaces a real one)."""
    if (trust_dir / ROOT_FILE).exists():
        return
    trust_dir.mkdir(parents=True, exist_ok=True)
    atomic_write(trust_dir / ROOT_FILE, encode_root(dev_root(keys)))


def _bundle_key(keys: dict[str, SigningKey]) -> str:
    digest = hashlib.sha256(keys["toolchain"].keyid.encode())
    for source in sorted((HERE / "toolchains").glob("*.py")):
        digest.update(source.read_bytes())
    versions = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\n", *HOST_PACKAGES],
        check=False,
        capture_output=True,
        text=True,
    ).stdout
    digest.update(versions.encode())
    return digest.hexdigest()[:16]


def host_gcc_bundle(cache: Path, keys: dict[str, SigningKey]) -> Path:
    """The host-gcc toolchain bundle signed with the development toolchain key, built once per content key."""
    out_dir = cache / "bundles" / _bundle_key(keys)
    existing = sorted(out_dir.glob("host-gcc-*.bundle"))
    if existing:
        return existing[0]
    key_file = sorted((cache / "keys").glob("toolchain-*.key"))[0]
    result = subprocess.run(
        [sys.executable, str(HERE / "toolchains" / "build.py"), "host-gcc", "--key", str(key_file),
         "--out", str(out_dir), "--expires-days", "3650", "--zstd-level", DEV_ZSTD_LEVEL],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    if result.returncode != 0:
        raise SystemExit(f"building the host-gcc toolchain bundle failed:\n{result.stderr}")
    return Path(result.stdout.strip().splitlines()[-1])


def _zig_key(keys: dict[str, SigningKey], package: Path, targets: list[str]) -> str:
    from importlib.metadata import version

    digest = hashlib.sha256(keys["toolchain"].keyid.encode())
    for source in sorted((HERE / "toolchains").glob("*.py")):
        digest.update(source.read_bytes())
    digest.update(f"ziglang {version('ziglang')} {package} {','.join(targets)}".encode())
    return digest.hexdigest()[:16]


def zig_bundle(cache: Path, targets: tuple[str, ...] = ("linux-arm64",)) -> Path:
    """The zig toolchain bundle built from the installed ``ziglang`` package (the ``dev`` extra), signed with the
    development toolchain key; built once per content key (package version, builder sources, key, targets).

    The build warms zig's cache for each target (about 1-2 minutes per target on 2 cores), so it is cached in
    ``cache/bundles`` and serialised by its own lock (``.zig-lock``, so that the host-gcc set-up never waits for it).
    """
    sys.path.insert(0, str(HERE / "toolchains"))
    try:
        import zig
    finally:
        sys.path.remove(str(HERE / "toolchains"))
    package = zig.installed_package()
    with locked(cache):
        keys = dev_keys(cache)
    with locked(cache, ".zig-lock"):
        out_dir = cache / "bundles" / f"zig-{_zig_key(keys, package, list(targets))}"
        existing = sorted(out_dir.glob("zig-*.bundle"))
        if existing:
            return existing[0]
        key_file = sorted((cache / "keys").glob("toolchain-*.key"))[0]
        result = subprocess.run(
            [sys.executable, str(HERE / "toolchains" / "build.py"), "zig", "--from-package", str(package),
             "--targets", ",".join(targets), "--key", str(key_file), "--out", str(out_dir), "--expires-days", "3650",
             "--zstd-level", DEV_ZSTD_LEVEL, "--work", str(cache)],
            check=False, capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode != 0:
            raise SystemExit(f"building the zig toolchain bundle failed:\n{result.stderr}")
        return Path(result.stdout.strip().splitlines()[-1])


def ensure(settings: Settings, cache: Path = DEFAULT_CACHE) -> None:
    """Trust root installed, host-gcc imported: what `make run` needs before `sigforge up`."""
    from sigforge.cli.db import open_database
    from sigforge.db import migrate
    from sigforge.services.context import Actor
    from sigforge.services.toolchains import ToolchainRegistry
    from sigforge.toolchains.runner import ProcessRunner

    with locked(cache):
        keys = dev_keys(cache)
        install_dev_trust(settings.trust_path, keys)
        bundle = host_gcc_bundle(cache, keys)
    db = open_database(settings)
    try:
        migrate.upgrade(db)
        registry = ToolchainRegistry(db, settings, ProcessRunner(network=settings.sandbox.network))
        if any(v.state == "verified" and "host-c" in v.targets for v in registry.installed()):
            return
        view = registry.import_bundle(bundle, Actor("dev-setup"))
        print(f"dev-setup: imported {view.name} {view.version} ({view.file_count} files) from {bundle.name}")
    finally:
        db.dispose()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="settings file (default: $SIGFORGE_CONFIG, ./sigforge.toml)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    ensure(load_settings(args.config), args.cache)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["dev_keys", "dev_root", "ensure", "host_gcc_bundle", "install_dev_trust", "zig_bundle"]
