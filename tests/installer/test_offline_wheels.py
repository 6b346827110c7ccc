"""offline-wheels/: the hash lock agrees with pyproject for all four targets, the wheelhouse installs sigforge with no
network, and the SBOM names Dramatiq's LGPL with its licence text.

The install test needs ``offline-wheels/wheelhouse`` filled for the running interpreter (``make wheelhouse``;
``.ci/run`` does it during set-up): skipped locally when it is absent, a failure under CI=true.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name, parse_wheel_filename

from realservices import in_ci
from support import REPO_ROOT

OFFLINE = REPO_ROOT / "offline-wheels"
WHEELHOUSE = OFFLINE / "wheelhouse"
sys.path.insert(0, str(OFFLINE))

import fill  # noqa: E402
import lock  # noqa: E402
import wheelhouse_lib as lib  # noqa: E402

FOUR = {"cp311-x86_64", "cp311-aarch64", "cp312-x86_64", "cp312-aarch64"}


def _pyproject_dependencies() -> list[Requirement]:
    data = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    return [Requirement(r) for r in data["project"]["dependencies"]]


# --- (a) the lock is consistent with pyproject and covers every target --------------------------------------------


def test_requirements_in_is_exactly_the_runtime_dependencies() -> None:
    assert lock.runtime_requirements() == sorted(str(r) for r in _pyproject_dependencies())


def test_every_runtime_dependency_is_pinned_within_its_range_on_every_target() -> None:
    pins = lib.read_lock()
    assert {t.name for t in lib.ALL_TARGETS} == FOUR
    for target in lib.ALL_TARGETS:
        applying = [p for p in pins if p.applies_to(target)]
        names = [p.name for p in applying]
        assert len(names) == len(set(names)), f"{target.name}: a name is pinned twice: {sorted(names)}"
        by_name = {p.name: p for p in applying}
        for req in _pyproject_dependencies():
            pin = by_name.get(canonicalize_name(req.name))
            assert pin is not None, f"{req} is not pinned for {target.name}"
            assert req.specifier.contains(pin.version, prereleases=True), f"{pin.requirement} violates {req}"
        for extra_dep in ("pika", "redis", "uvloop", "httptools", "psycopg-binary"):  # the extras pyproject asks for
            assert extra_dep in by_name, f"{extra_dep} (an extra of a runtime dependency) missing on {target.name}"


def test_every_pin_has_a_hash_of_a_fitting_wheel_for_each_target() -> None:
    pins = lib.read_lock()
    manifest = lib.read_lock_json()
    assert set(manifest["targets"]) == FOUR
    used: dict[str, set[str]] = {}
    for target in lib.ALL_TARGETS:
        tags = set(target.tags())
        wheels = {canonicalize_name(w["name"]): w for w in manifest["targets"][target.name]["wheels"]}
        applying = {p.name: p for p in pins if p.applies_to(target)}
        assert set(wheels) == set(applying), f"{target.name}: lock and manifest disagree"
        for name, pin in applying.items():
            wheel = wheels[name]
            assert len(pin.hashes) >= 1
            assert wheel["sha256"] in pin.hashes, f"{pin.requirement}: no hash for {target.name}"
            w_name, w_version, _build, w_tags = parse_wheel_filename(wheel["filename"])
            assert canonicalize_name(w_name) == name and str(w_version) == pin.version
            assert tags & set(w_tags), f"{wheel['filename']} does not fit {target.name}"
            used.setdefault(str(pin.requirement), set()).add(wheel["sha256"])
    for pin in pins:  # no hash in the lock that no target uses, no pin that no target uses
        assert used.get(str(pin.requirement)) == set(pin.hashes), f"{pin.requirement}: stray hashes"


def test_markers_select_exactly_the_targets_they_were_written_for() -> None:
    targets = list(lib.ALL_TARGETS)
    for size in range(1, len(targets) + 1):
        for subset in itertools.combinations(targets, size):
            marker = lock.marker_for(set(subset))
            if marker is None:
                assert set(subset) == set(targets)
                continue
            req = Requirement(f"x==1 ; {marker}")
            assert {t for t in targets if req.marker.evaluate(t.marker_environment())} == set(subset), marker


def test_fill_refuses_a_manifest_that_does_not_match_the_lock(tmp_path: Path) -> None:
    manifest = lib.read_lock_json()
    wheel = manifest["targets"]["cp311-x86_64"]["wheels"][0]
    wheel["sha256"] = "0" * 64
    tampered = tmp_path / "requirements.lock.json"
    tampered.write_text(json.dumps(manifest), encoding="utf-8")
    assert fill.expected_wheels(list(lib.ALL_TARGETS))  # the committed pair agrees
    with pytest.raises(fill.FillError, match="is not the locked"):
        fill.expected_wheels([lib.ALL_TARGETS[0]], lib.LOCK, tampered)


# --- (b) offline install from the wheelhouse ------------------------------------------------------------------------


def _need(condition: bool, message: str) -> None:
    if condition:
        return
    if in_ci():
        pytest.fail(f"{message}, and CI=true forbids skipping it")
    pytest.skip(message)


def _no_network(*cmd: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a new network namespace (no interface but a downed loopback) with a scrubbed environment."""
    env = [
        "env",
        "-i",
        "PATH=/usr/bin:/bin",
        f"HOME={home}",
        "LANG=C.UTF-8",
        f"PIP_CONFIG_FILE={os.devnull}",
        "PIP_NO_CACHE_DIR=1",
        "PIP_INDEX_URL=http://invalid.invalid/simple",
        "PIP_DISABLE_PIP_VERSION_CHECK=1",
    ]
    return subprocess.run(["unshare", "--net", *env, *map(str, cmd)], capture_output=True, text=True, timeout=240)


@pytest.fixture(scope="module")
def offline_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv of the running interpreter with sigforge installed from the wheelhouse inside ``unshare -n``
    (built once for the module: venv + install about 25 s here)."""
    current = lib.current_target()
    filled_file = WHEELHOUSE / "FILLED.json"
    _need(filled_file.exists(), f"{WHEELHOUSE} is not filled (run `make wheelhouse` on a connected host)")
    filled = json.loads(filled_file.read_text(encoding="utf-8"))
    _need(current.name in filled["targets"], f"the wheelhouse serves {filled['targets']}, not {current.name}")
    _need(shutil.which("unshare") is not None, "unshare (util-linux) is not installed")
    probe = subprocess.run(["unshare", "--net", "true"], capture_output=True, text=True)
    _need(probe.returncode == 0, f"cannot create a network namespace: {probe.stderr.strip()}")

    for line in (WHEELHOUSE / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((WHEELHOUSE / name).read_bytes()).hexdigest() == digest, f"{name} does not match"

    base = tmp_path_factory.mktemp("offline")
    venv = base / "venv"
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=120)
    proof = _no_network(
        venv / "bin/python",
        "-c",
        "import socket\ntry:\n socket.create_connection(('1.1.1.1', 53), timeout=3)\n"
        "except OSError as e:\n print('isolated', e)\nelse:\n print('CONNECTED')",
        home=base,
    )
    assert proof.stdout.startswith("isolated"), proof.stdout + proof.stderr
    # --no-compile: byte-compiling scipy/faker would triple the test's time; the box's install compiles.
    install = _no_network(
        venv / "bin/pip",
        "install",
        "--no-compile",
        "--no-index",
        "--find-links",
        WHEELHOUSE,
        "--require-hashes",
        "-r",
        WHEELHOUSE / "requirements.lock",
        "-r",
        WHEELHOUSE / "sigforge.lock",
        home=base,
    )
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    print(f"offline venv built in {time.monotonic() - started:.1f} s")
    return venv


def test_offline_install_imports_and_runs(offline_venv: Path) -> None:
    home = offline_venv.parent
    code = (
        "import sigforge, litestar, dramatiq, sqlalchemy, numpy, scipy, msgspec, alembic, structlog, uvicorn, "
        "psycopg, cryptography, zstandard, sqlite_utils, redis, pika\n"
        "from importlib import metadata\n"
        "import json; print(json.dumps({d.metadata['Name']: d.version for d in metadata.distributions()}))"
    )
    ran = _no_network(offline_venv / "bin/python", "-c", code, home=home)
    assert ran.returncode == 0, ran.stderr
    installed = {canonicalize_name(k): v for k, v in json.loads(ran.stdout).items()}

    sigforge_pin = Requirement((WHEELHOUSE / "sigforge.lock").read_text(encoding="utf-8").splitlines()[-1].split()[0])
    version = _no_network(offline_venv / "bin/sigforge", "--version", home=home)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"sigforge {next(iter(sigforge_pin.specifier)).version}"

    current = lib.current_target()
    pinned = {p.name: p.version for p in lib.read_lock() if p.applies_to(current)}
    for name, pin_version in pinned.items():
        assert installed.get(name) == pin_version, f"{name}: installed {installed.get(name)}, locked {pin_version}"
    assert set(installed) - set(pinned) <= {"sigforge", "setuptools"}, "something not in the lock was installed"

    check = _no_network(offline_venv / "bin/python", "-m", "pip", "check", home=home)
    assert check.returncode == 0, check.stdout + check.stderr


# --- (c) the SBOM -----------------------------------------------------------------------------------------------------


def test_sbom_lists_dramatiq_as_lgpl_with_its_licence_text(offline_venv: Path, tmp_path: Path) -> None:
    out = tmp_path / "sbom"
    ran = subprocess.run(
        [
            sys.executable,
            str(OFFLINE / "sbom.py"),
            "--python",
            str(offline_venv / "bin/python"),
            "--wheelhouse",
            str(WHEELHOUSE),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    report = json.loads((out / "licenses.json").read_text(encoding="utf-8"))
    assert report["no_license_information"] == []
    packages = {p["name"]: p for p in report["packages"]}
    assert {"sigforge", "litestar", "numpy", "dramatiq"} <= set(packages)

    dramatiq = packages["dramatiq"]
    assert dramatiq["copyleft"] is True and "dramatiq" in report["copyleft"]
    assert any("LGPL" in c for c in dramatiq["classifiers"]) or "LGPL" in (dramatiq["license_expression"] or "")
    texts = {Path(f).name: (out / f).read_text(encoding="utf-8") for f in dramatiq["license_files"]}
    assert "GNU LESSER GENERAL PUBLIC LICENSE" in texts["COPYING.LESSER"]
    assert dramatiq["notice"] == "NOTICE-dramatiq.md"
    assert "How to replace it" in (out / "NOTICE-dramatiq.md").read_text(encoding="utf-8")

    (dramatiq_pin,) = [p for p in lib.read_lock() if p.name == "dramatiq"]
    assert [w["sha256"] for w in dramatiq["wheel"]] == list(dramatiq_pin.hashes)
    numpy = packages["numpy"]
    assert (
        numpy["license_files"]
        and numpy["wheel"]
        and numpy["wheel"][0]["sha256"] in {h for p in lib.read_lock() if p.name == "numpy" for h in p.hashes}
    )
