"""Build the install media on the connected build host (see installer/README.md, "Install media").

Writes a media directory::

    install.sh               the installer (installer/install.sh), POSIX sh, no network
    README-OPERATOR.md       the operator's steps and the fingerprint check
    root.json                the trust root the box will install (beside the bundle: a bundle never carries trust)
    FINGERPRINT.txt          the root's fingerprint and the bundle's SHA-256, to print on the delivery sheet
    sigforge-<version>.media the signed bundle (kind "media", release-role keys, gzip so that the box's own tar can
                             unpack the bootstrap binary) holding release/ (the binary tree: bin/sigforge, ...),
                             wheelhouse/, toolchains/*.bundle, units/*.service|.path, config/sigforge.toml, docs/
    SHA256SUMS               every other file (sha256sum -c format)

Reproducible: the same inputs and ``--created`` give the same manifest bytes and the same bundle bytes (files are
staged in path order, modes normalised to 0755/0644 by the bundle builder, no mtimes or owners recorded; Ed25519 and
the canonical gzip are deterministic). Then ``sigforge media write STICK --from DIR [--part-size 4G]``.

Usage::

    python installer/build_media.py --out DIR --root root.json --key release.key --created 2026-01-01T00:00:00Z \\
        [--release dist/sigforge] [--wheelhouse offline-wheels/wheelhouse] [--toolchain FILE.bundle ...] \\
        [--version X.Y.Z] [--expires DATE] [--arch ARCH]

``--release`` is a release tree with an executable ``bin/sigforge``, or PyInstaller's onedir output
(``sigforge`` + ``_internal/``, what ``make frozen`` writes to ``dist/sigforge``), which gets ``bin/sigforge`` as a
relative link to ``../sigforge``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import shutil
import stat
import subprocess
import sys
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sigforge.bundles import PRODUCT
from sigforge.bundles.build import build_bundle
from sigforge.bundles.keys import load_signing_key
from sigforge.bundles.manifest import canonical_bytes
from sigforge.bundles.media import MEDIA_SUFFIX, write_sums
from sigforge.bundles.state import TrustState
from sigforge.bundles.store import read_root_file
from sigforge.bundles.trust import fingerprint, verify_installed_root
from sigforge.bundles.verify import verify_bundle
from sigforge.bundles.version import Version
from sigforge.cli.keys import parse_time
from sigforge.settings import BundleSettings

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_RELEASE = REPO / "dist" / "sigforge"
DEFAULT_WHEELHOUSE = REPO / "offline-wheels" / "wheelhouse"
UNITS = REPO / "appliance" / "units"
EXAMPLE_CONFIG = REPO / "appliance" / "sigforge.example.toml"
DOCS = REPO / "docs"
PRODUCTION_DATA_DIR = "/var/lib/sigforge"
TRUST_SUFFIXES = (".pem", ".crt", ".der", ".pub", ".key")  # bundles.manifest refuses these names (own-trust)

OPERATOR_README = """\
# sigforge {version}: installing a box

This media installs sigforge {version} on a Debian- or RHEL-like Linux host ({arch}) with no network.

## Before you start: check the media against the delivery sheet

The delivery sheet (printed, handed over separately from this media) carries two values. Compare both; if either
differs, stop: the media is not the one that was sent.

    Trust root fingerprint:  {fingerprint}
    Media bundle sha256:     {bundle_sha256}

With the host's own tools, before running anything from the media:

    sha256sum {bundle}        # on a split media: cat {bundle}.part* | sha256sum

## Install (as root)

    sh install.sh

`install.sh` copies the media to local storage and checks it (`SHA256SUMS`; a split bundle is joined), shows the
trust root's fingerprint and asks you to type `yes` if it matches the sheet, verifies the whole bundle against that
root, and only then installs:

- the release into `/opt/sigforge/releases/{version}` with `/opt/sigforge/current` pointing at it;
- the configuration `/etc/sigforge/sigforge.toml` (kept if it exists), data in `/var/lib/sigforge`;
- the system user `sigforge`, the trust root, the database schema, the toolchains on this media;
- the systemd units `sigforge.service` (web) and `sigforge-worker.service` (worker pool), enabled and started,
  and `sigforge-update.path` (applies the updates an admin uploads in the console through `sigforge-update.service`);

and ends with a health check of `http://127.0.0.1:8470/readyz`. Options: `--port N`, `--yes-fingerprint HEX`
(unattended installs: the fingerprint from the sheet), `--prefix DIR --no-systemd` (an unprivileged install below
DIR, services run by a pidfile instead of systemd).

The worker pool builds and runs code in a sandbox that needs user namespaces (see `units/sigforge-worker.service`).
It also creates the first admin, `admin`, and prints its one-time password once in the final summary: write it
down, sign in and choose a new password at once (`sigforge user passwd admin` sets one on the box).

An existing installation is never overwritten: update it with `sigforge update apply <release bundle>`.
"""


def _run_version(binary: Path) -> str:
    done = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{binary} --version failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return done.stdout.strip().removeprefix("sigforge ").strip()


def _copy_file(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src, dst)
    dst.chmod(0o755 if src.stat().st_mode & stat.S_IXUSR else 0o644)


def _copy_tree(src: Path, dst: Path) -> None:
    """Regular files and links of ``src`` (links kept as links), in path order; caches and byte-code left out."""
    for dirpath, dirnames, filenames in os.walk(src):
        dirnames[:] = sorted(d for d in dirnames if d != "__pycache__")
        for name in sorted(filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]):
            path = Path(dirpath) / name
            target = dst / path.relative_to(src)
            if path.is_symlink():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.symlink_to(os.readlink(path))
            elif path.suffix != ".pyc":
                _copy_file(path, target)


def stage_release(release: Path, dest: Path) -> None:
    """The release tree at ``dest``: as given if it has ``bin/sigforge``, else a PyInstaller onedir + the link.

    Files the bundle format refuses as trust material by name (``*.pem``, ``*.crt``, ``*.der``, ``*.pub``,
    ``*.key``) are left out, each named on stderr: a bundle never brings its own trust, and that includes TLS trust
    (PyInstaller collects certifi's public CA list, ``_internal/certifi/cacert.pem``, which an offline box has no use
    for; TLS to a site's PostgreSQL/RabbitMQ uses the site's CA, configured in the database/broker URL).
    """
    if (release / "bin" / "sigforge").is_file():
        _copy_tree(release, dest)
    elif (release / "sigforge").is_file() and (release / "_internal").is_dir():
        _copy_tree(release, dest)
        (dest / "bin").mkdir()
        (dest / "bin" / "sigforge").symlink_to("../sigforge")
    else:
        raise SystemExit(f"{release} is neither a release tree (bin/sigforge) nor a PyInstaller onedir (sigforge + "
                         "_internal/); build one with `make frozen`")  # fmt: skip
    for path in sorted(dest.rglob("*")):
        if path.suffix.lower() in TRUST_SUFFIXES and (path.is_file() or path.is_symlink()):
            print(f"build_media: leaving out {path.relative_to(dest)} (trust material; see stage_release)",
                  file=sys.stderr)  # fmt: skip
            path.unlink()


def config_text() -> str:
    text = EXAMPLE_CONFIG.read_text()
    lines = text.splitlines(keepends=True)
    out = [f'data_dir = "{PRODUCTION_DATA_DIR}"\n' if line.startswith("data_dir = ") else line for line in lines]
    if out == lines:
        raise SystemExit(f"{EXAMPLE_CONFIG} has no data_dir line to set")
    return "".join(out)


def stage(args: argparse.Namespace, payload: Path) -> None:
    stage_release(args.release, payload / "release")
    if args.wheelhouse is not None:
        if not (args.wheelhouse / "SHA256SUMS").is_file():
            raise SystemExit(f"{args.wheelhouse} is not a filled wheelhouse (no SHA256SUMS): run `make wheelhouse`")
        _copy_tree(args.wheelhouse, payload / "wheelhouse")
    names = [t.name for t in args.toolchain]
    if len(set(names)) != len(names):
        raise SystemExit(f"two toolchain bundles have the same file name: {sorted(names)}")
    for bundle in args.toolchain:
        _copy_file(bundle, payload / "toolchains" / bundle.name)
    for unit in sorted([*UNITS.glob("*.service"), *UNITS.glob("*.path")]):
        _copy_file(unit, payload / "units" / unit.name)
    (payload / "config").mkdir()
    (payload / "config" / "sigforge.toml").write_text(config_text())
    for doc in sorted(DOCS.rglob("*.md")):
        _copy_file(doc, payload / "docs" / doc.relative_to(DOCS))
    _copy_file(REPO / "installer" / "README.md", payload / "docs" / "installer.md")


def build(args: argparse.Namespace) -> Path:
    out: Path = args.out
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty")
    root = read_root_file(args.root)
    verify_installed_root(root)
    version = args.version or _run_version(args.release / "bin" / "sigforge" if (args.release / "bin").is_dir()
                                           else args.release / "sigforge")  # fmt: skip
    Version.parse(version)
    created = parse_time(args.created) if args.created else datetime.now(UTC).replace(microsecond=0)
    expires = parse_time(args.expires) if args.expires else created + timedelta(days=365)
    keys = [load_signing_key(k) for k in args.key]
    out.mkdir(parents=True, exist_ok=True)
    bundle_name = f"sigforge-{version}{MEDIA_SUFFIX}"
    with tempfile.TemporaryDirectory(prefix="sigforge-media-", dir=args.work) as tmp:
        payload = Path(tmp) / "payload"
        payload.mkdir()
        stage(args, payload)
        staged_version = _run_version(payload / "release" / "bin" / "sigforge")
        if staged_version != version:
            raise SystemExit(f"the release says it is {staged_version}, not {version}")
        manifest = build_bundle(
            source=payload, out=out / bundle_name, kind="media", name=PRODUCT, version=version, product=PRODUCT,
            host_arch=args.arch, created=created, expires=expires, keys=keys, compression="gzip",
        )  # fmt: skip
    # Check it as the box will (release-role threshold of this root, no own trust material, every byte).
    verify_bundle(out / bundle_name, trust_root=root, state=TrustState(), now=max(datetime.now(UTC), created),
                  expected_product=PRODUCT, host_arch=args.arch, installed_version=None, limits=BundleSettings(),
                  expected_kind="media")  # fmt: skip
    shutil.copyfile(args.root, out / "root.json")
    shutil.copyfile(HERE / "install.sh", out / "install.sh")
    (out / "install.sh").chmod(0o755)
    bundle_sha = hashlib.sha256((out / bundle_name).read_bytes()).hexdigest()
    fp = fingerprint(root)
    (out / "FINGERPRINT.txt").write_text(
        f"sigforge {version} install media ({args.arch})\n"
        f"trust root fingerprint: {fp}\n"
        f"media bundle sha256:    {bundle_sha}  {bundle_name}\n"
        f"manifest sha256:        {hashlib.sha256(canonical_bytes(manifest)).hexdigest()}\n"
    )
    (out / "README-OPERATOR.md").write_text(OPERATOR_README.format(
        version=version, arch=args.arch, fingerprint=fp, bundle_sha256=bundle_sha, bundle=bundle_name))  # fmt: skip
    for path in out.iterdir():
        if path.name != "install.sh":
            path.chmod(0o644)
    write_sums(out, sorted(p.name for p in out.iterdir()))
    print(f"media for sigforge {version}: {len(manifest.files)} files, {manifest.total_size} bytes unpacked")
    print(f"trust root fingerprint: {fp}")
    print(f"bundle sha256: {bundle_sha}")
    print(out)
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="the media directory (new or empty)")
    parser.add_argument("--root", type=Path, required=True, metavar="root.json", help="the trust root to ship")
    parser.add_argument("--key", type=Path, action="append", required=True, metavar="KEYFILE",
                        help="release-role private key (repeat for a threshold above 1)")  # fmt: skip
    parser.add_argument("--release", type=Path, default=DEFAULT_RELEASE, metavar="DIR",
                        help="release tree or PyInstaller onedir (default: dist/sigforge)")  # fmt: skip
    parser.add_argument("--wheelhouse", type=Path, default=DEFAULT_WHEELHOUSE, metavar="DIR")
    parser.add_argument("--no-wheelhouse", dest="wheelhouse", action="store_const", const=None,
                        help="leave the wheelhouse out")  # fmt: skip
    parser.add_argument("--toolchain", type=Path, action="append", default=[], metavar="FILE.bundle")
    parser.add_argument("--version", metavar="X.Y.Z", help="default: what the release's bin/sigforge --version says")
    parser.add_argument("--created", metavar="DATE", help="fix it for a reproducible build (default: now)")
    parser.add_argument("--expires", metavar="DATE", help="default: --created + 365 days")
    parser.add_argument("--arch", default=platform.machine())
    parser.add_argument("--work", type=Path, metavar="DIR", help="where to stage (default: $TMPDIR)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    build(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
