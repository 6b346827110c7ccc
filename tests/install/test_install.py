"""Install media (issue 5, parts 3 and 4): built by ``installer/build_media.py``, written to a "stick" by ``sigforge
media write`` (split into checksummed parts), installed by the media's ``install.sh`` into a temporary prefix in
no-systemd mode inside a network namespace with no interfaces but a loopback (``unshare -n``).

The acceptance test runs install.sh, a ``/readyz`` probe, a translation through the API (``check_box.py``) and a
``sigforge translate`` with the installed binary in ONE ``unshare -n`` shell: nothing outside the namespace can reach
the service, and the namespace reaches nothing. The release is the frozen binary when PyInstaller is installed (see
``mediakit``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from mediakit import Inputs, build, inputs

from sigforge.bundles.archive import MANIFEST_NAME
from sigforge.bundles.media import parse_sums, write_media
from sigforge.cli.service_manager import PidfileServices
from support import REPO_ROOT, child_env
from toolchainkit import new_keys

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("install-media"), pytest.mark.timeout(1500)]

HERE = Path(__file__).resolve().parent
INSTALLED = "opt/sigforge/current/bin/sigforge"


def _unshare_available() -> None:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode(errors='replace').strip()}")


@pytest.fixture(scope="module")
def media_inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    _unshare_available()
    return inputs(tmp_path_factory.mktemp("media-inputs"))


@pytest.fixture(scope="module")
def media(media_inputs: Inputs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(media_inputs, tmp_path_factory.mktemp("media-build") / "media")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stick(media: Path, dest: Path, part_size: str | None) -> Path:
    """``sigforge media write DEST --from MEDIA [--part-size N]`` (the CLI, as the build host runs it)."""
    cmd = [sys.executable, "-m", "sigforge", "media", "write", str(dest), "--from", str(media)]
    done = subprocess.run(cmd + (["--part-size", part_size] if part_size else []), capture_output=True, text=True,
                          env=child_env(), timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return dest


def _install(
    stick: Path, prefix: Path, port: int, fp: str, *, after: str = "", options: str = "", timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    # install.sh's output is also kept in INSTALL_OUT, for the checks in ``after`` (the first admin's password).
    script = f"""
set -e
ip link set lo up
INSTALL_OUT={prefix.parent.parent}/install-{port}.out
status=0
sh {stick}/install.sh --prefix {prefix} --no-systemd --port {port} --yes-fingerprint '{fp}' {options} \\
    >"$INSTALL_OUT" || status=$?
cat "$INSTALL_OUT"
[ "$status" = 0 ] || exit "$status"
{after}
"""
    return subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                          env=child_env(TMPDIR=str(prefix.parent)), timeout=timeout, check=False)  # fmt: skip


@pytest.fixture
def boxes() -> Iterator[list[Path]]:
    """Prefixes installed by a test: their services are stopped afterwards whatever happened."""
    prefixes: list[Path] = []
    yield prefixes
    for prefix in prefixes:
        current = prefix / "opt" / "sigforge" / "current"
        if current.exists():
            PidfileServices(current, prefix / "var" / "lib" / "sigforge", stop_timeout_s=60).stop()


def test_clean_install_from_split_media_in_a_network_namespace(
    media: Path, media_inputs: Inputs, tmp_path: Path, boxes: list[Path]
) -> None:
    stick = _stick(media, tmp_path / "stick", "40M")
    bundle = next(media.glob("sigforge-*.media"))
    parts = sorted(stick.glob("sigforge-*.media.part*"))
    assert len(parts) == -(-bundle.stat().st_size // (40 * 1024**2)) >= 2, parts
    sums = parse_sums((stick / "SHA256SUMS").read_bytes())
    assert set(sums) == {p.name for p in stick.iterdir()} - {"SHA256SUMS"}
    assert all(hashlib.sha256(p.read_bytes()).hexdigest() == sums[p.name] for p in parts)
    assert not (stick / bundle.name).exists()

    prefix = tmp_path / "box" / "prefix"
    prefix.parent.mkdir()
    boxes.append(prefix)
    port = _free_port()
    sf = f"{prefix / INSTALLED} --config {prefix / 'etc/sigforge/sigforge.toml'}"
    out = tmp_path / "box" / "artifact"
    started = time.monotonic()
    done = _install(stick, prefix, port, media_inputs.fingerprint, after=f"""
echo "INSTALLED_AFTER $(($(date +%s) - {int(time.time())}))"
{sys.executable} {HERE / 'check_box.py'} {port} {REPO_ROOT / 'examples' / 'fir_decimate.py'} \
    "$(sed -n 's/^ *one-time password: *//p' "$INSTALL_OUT")"
{sf} translate {REPO_ROOT / 'examples' / 'fir_decimate.py'} --frame 256 --out {out}
{sf} service stop --prefix {prefix} --services pidfile
""")  # fmt: skip
    elapsed = time.monotonic() - started
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    print(f"install + checks: {elapsed:.0f} s ({media_inputs.release_kind} release); {done.stdout.splitlines()[0]}")
    print(next(line for line in done.stdout.splitlines() if line.startswith("INSTALLED_AFTER")))
    assert f"joined {len(parts)} parts" in done.stdout
    assert "VERIFIED media sigforge" in done.stdout
    seen = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("CHECK "))[6:])
    data = prefix / "var" / "lib" / "sigforge"
    toolchains = data / "toolchains"
    # no network inside: the loopback only
    assert seen["interfaces"] == ["lo"], seen
    assert (seen["readyz"], seen["version"]) == (200, "0.1.0"), seen
    assert seen["created"] == 201 and seen["status"] == "verified", seen
    assert seen["report"]["verified"] is True, seen
    # the first admin, created by install.sh, signs in with the one-time password it printed once, and must change it
    assert seen["admin"] == {"status": 201, "name": "admin", "role": "admin", "must_change_password": True}, seen
    cc = Path(seen["report"]["toolchain"]["cc"])
    assert cc.is_relative_to(toolchains), f"{cc} is not a toolchain imported into {toolchains}"
    assert "VERIFIED" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["verified"] is True and Path(report["toolchain"]["cc"]).is_relative_to(toolchains), report

    # the layout
    root = prefix / "opt" / "sigforge"
    assert (root / "current").readlink() == Path("releases/0.1.0")
    assert (root / "releases" / "0.1.0" / "bin" / "sigforge").is_file()
    config = (prefix / "etc" / "sigforge" / "sigforge.toml").read_text()
    assert f'data_dir = "{data}"' in config and f"port = {port}" in config
    assert (data / "trust" / "root.json").read_bytes() == media_inputs.root.read_bytes()
    assert (data / "sigforge.sqlite3").is_file()
    assert sorted(p.name for p in (root / "share" / "units").iterdir()) == [
        "sigforge-up.service", "sigforge-update.path", "sigforge-update.service", "sigforge-worker.service",
        "sigforge.service"]  # fmt: skip
    assert (root / "share" / "docs" / "install.md").is_file()
    assert not list(prefix.parent.glob("sigforge-install.*")), "install.sh left its work directory behind"

    # a second run refuses to install over it, and points at the updater
    again = _install(stick, prefix, port, media_inputs.fingerprint, timeout=120)
    assert again.returncode != 0 and "update apply" in again.stderr, again.stdout + again.stderr
    assert (root / "current").readlink() == Path("releases/0.1.0")


def test_install_into_the_sites_python_from_the_wheelhouse(
    media: Path, media_inputs: Inputs, tmp_path: Path, boxes: list[Path]
) -> None:
    """``install.sh --python``: the release is a virtual environment of the site's own Python, built from the media's
    hash-locked wheelhouse with no network; the box then works exactly as with the frozen binary."""
    prefix = tmp_path / "box" / "prefix"
    prefix.parent.mkdir()
    boxes.append(prefix)
    port = _free_port()
    python = Path(sys.base_prefix) / "bin" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    sf = f"{prefix / INSTALLED} --config {prefix / 'etc/sigforge/sigforge.toml'}"
    done = _install(media, prefix, port, media_inputs.fingerprint, options=f"--python {python}", after=f"""
{sys.executable} {HERE / 'check_box.py'} {port} {REPO_ROOT / 'examples' / 'fir_decimate.py'}
{sf} service stop --prefix {prefix} --services pidfile
""")  # fmt: skip
    assert done.returncode == 0, f"{done.stdout[-6000:]}\n{done.stderr[-6000:]}"
    assert "building the release from the wheelhouse" in done.stdout
    seen = json.loads(next(line for line in done.stdout.splitlines() if line.startswith("CHECK "))[6:])
    assert seen["interfaces"] == ["lo"] and (seen["readyz"], seen["version"]) == (200, "0.1.0"), seen
    assert seen["status"] == "verified" and seen["report"]["verified"] is True, seen
    release = prefix / "opt" / "sigforge" / "releases" / "0.1.0"
    assert (release / "venv" / "bin" / "python").exists() and not (release / "_internal").exists()
    ran = subprocess.run([str(release / "venv" / "bin" / "python"), "-c", "import sigforge; print(sigforge.__file__)"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert Path(ran.stdout.strip()).is_relative_to(release / "venv")


def test_a_python_that_cannot_host_the_release_is_refused_first(media: Path, tmp_path: Path) -> None:
    prefix = tmp_path / "box" / "prefix"
    prefix.parent.mkdir()
    done = _install(media, prefix, _free_port(), "0000", options="--python /bin/false", timeout=120)
    assert done.returncode != 0 and "not a Python 3.11 or newer" in done.stderr, done.stderr
    assert not prefix.exists()  # refused before anything was created or copied


def test_corrupted_part_is_refused_before_anything_is_installed(media: Path, tmp_path: Path) -> None:
    stick = _stick(media, tmp_path / "stick", "40M")
    part = sorted(stick.glob("*.part*"))[1]
    data = bytearray(part.read_bytes())
    data[len(data) // 2] ^= 0x01
    part.write_bytes(bytes(data))
    prefix = tmp_path / "box" / "prefix"
    prefix.parent.mkdir()
    done = _install(stick, prefix, _free_port(), "0000", timeout=300)
    assert done.returncode != 0
    assert "does not match SHA256SUMS" in done.stderr and part.name in done.stdout + done.stderr, done.stderr
    assert list(prefix.iterdir()) == []
    assert list(prefix.parent.iterdir()) == [prefix]  # the work directory is gone too


def test_fingerprint_mismatch_is_refused(media: Path, media_inputs: Inputs, tmp_path: Path) -> None:
    prefix = tmp_path / "box" / "prefix"
    prefix.parent.mkdir()
    wrong = media_inputs.fingerprint[:-1] + ("0" if media_inputs.fingerprint[-1] != "0" else "1")
    done = _install(media, prefix, _free_port(), wrong, timeout=300)
    assert done.returncode != 0
    assert media_inputs.fingerprint in done.stdout, done.stdout  # shown for the operator to compare
    assert "not the one given with --yes-fingerprint" in done.stderr, done.stderr
    assert list(prefix.iterdir()) == []
    assert list(prefix.parent.iterdir()) == [prefix]


def test_bundle_not_signed_by_the_roots_release_key_is_rejected(media_inputs: Inputs, tmp_path: Path) -> None:
    """A well-formed media whose bundle is signed by a key the root does not list for `release`: SHA256SUMS match,
    the fingerprint matches, and the bootstrap verification (`sigforge media unpack`) refuses it."""
    from datetime import UTC, datetime, timedelta

    import build_media

    from sigforge.bundles.build import build_bundle
    from sigforge.bundles.media import write_sums

    payload = tmp_path / "payload"
    build_media.stage_release(media_inputs.release, payload / "release")
    media = tmp_path / "forged"
    media.mkdir()
    now = datetime.now(UTC)
    build_bundle(source=payload, out=media / "sigforge-0.1.0.media", kind="media", name="sigforge", version="0.1.0",
                 product="sigforge", host_arch="any", created=now - timedelta(minutes=1),
                 expires=now + timedelta(days=1), keys=[new_keys()["release"]], compression="gzip")  # fmt: skip
    shutil.copyfile(media_inputs.root, media / "root.json")
    shutil.copyfile(REPO_ROOT / "installer" / "install.sh", media / "install.sh")
    write_sums(media, ["install.sh", "root.json", "sigforge-0.1.0.media"])
    prefix = tmp_path / "box" / "prefix"
    prefix.parent.mkdir()
    done = _install(media, prefix, _free_port(), media_inputs.fingerprint, timeout=300)
    assert done.returncode != 0
    assert "rejected: [signature-threshold]" in done.stderr or "rejected: [unknown-key]" in done.stderr, done.stderr
    assert "REJECTED: nothing was installed" in done.stderr
    assert list(prefix.iterdir()) == []


def test_media_is_reproducible(media: Path, media_inputs: Inputs, tmp_path: Path) -> None:
    again = build(media_inputs, tmp_path / "again")
    name = next(media.glob("*.media")).name
    assert _manifest(again / name) == _manifest(media / name)
    assert (again / name).read_bytes() == (media / name).read_bytes()
    assert (again / "SHA256SUMS").read_bytes() == (media / "SHA256SUMS").read_bytes()
    assert (again / "FINGERPRINT.txt").read_text() == (media / "FINGERPRINT.txt").read_text()
    # The comparison is of real content (every file's digest), so any non-determinism in the build would show.
    listed = json.loads(_manifest(media / name))["files"]
    assert len(listed) > 100 and all(len(f["sha256"]) == 64 for f in listed)


def _manifest(bundle: Path) -> bytes:
    with tarfile.open(bundle, "r:gz") as tar:
        member = tar.extractfile(MANIFEST_NAME)
        assert member is not None
        return member.read()


def test_media_contents(media: Path) -> None:
    manifest = json.loads(_manifest(next(media.glob("*.media"))))
    assert manifest["kind"] == "media" and manifest["name"] == "sigforge"
    paths = {f["path"] for f in manifest["files"]} | {s["path"] for s in manifest["symlinks"]}
    tops = {p.split("/")[0] for p in paths}
    assert tops == {"release", "wheelhouse", "toolchains", "units", "config", "docs"}, tops
    assert "release/bin/sigforge" in paths
    assert {
        "units/sigforge.service",
        "units/sigforge-worker.service",
        "units/sigforge-up.service",
        "units/sigforge-update.service",
        "units/sigforge-update.path",
    } <= paths
    assert "wheelhouse/SHA256SUMS" in paths and any(p.endswith(".bundle") for p in paths)
    assert sorted(p.name for p in media.iterdir()) == sorted(
        ["FINGERPRINT.txt", "README-OPERATOR.md", "SHA256SUMS", "install.sh", "root.json", "sigforge-0.1.0.media"]
    )


def test_write_media_splits_and_checks(tmp_path: Path) -> None:
    src = tmp_path / "media"
    src.mkdir()
    payload = bytes(range(256)) * 41  # 10,496 bytes
    (src / "sigforge-1.2.3.media").write_bytes(payload)
    (src / "install.sh").write_text("#!/bin/sh\n")
    (src / "install.sh").chmod(0o755)
    from sigforge.bundles.media import format_sums, parse_size

    sums = {n: hashlib.sha256((src / n).read_bytes()).hexdigest() for n in ("sigforge-1.2.3.media", "install.sh")}
    (src / "SHA256SUMS").write_bytes(format_sums(sums))
    written = write_media(src, tmp_path / "stick", parse_size("4k"))
    parts = sorted(p for p in written if ".part" in p)
    assert parts == [f"sigforge-1.2.3.media.part0{i}" for i in range(3)]
    assert b"".join((tmp_path / "stick" / p).read_bytes() for p in parts) == payload
    assert [(tmp_path / "stick" / p).stat().st_size for p in parts] == [4096, 4096, 2304]
    assert parse_sums((tmp_path / "stick" / "SHA256SUMS").read_bytes()) == written
    # unsplit again: stale parts go
    written = write_media(src, tmp_path / "stick", None)
    assert sorted(written) == ["install.sh", "sigforge-1.2.3.media"]
    assert sorted(p.name for p in (tmp_path / "stick").iterdir()) == [
        "SHA256SUMS",
        "install.sh",
        "sigforge-1.2.3.media",
    ]
    # a source file that does not match its line is refused, and nothing of it is left
    (src / "sigforge-1.2.3.media").write_bytes(payload[:-1] + b"x")
    shutil.rmtree(tmp_path / "stick")
    from sigforge.errors import IntegrityError

    with pytest.raises(IntegrityError, match="does not match"):
        write_media(src, tmp_path / "stick", parse_size("4k"))
    assert not any(p.name.startswith("sigforge-") for p in (tmp_path / "stick").iterdir())
    assert parse_size("4G") == 4 * 1024**3 and parse_size("700M") == 700 * 1024**2 and parse_size("1000") == 1000
