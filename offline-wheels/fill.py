#!/usr/bin/env python3
"""Fill offline-wheels/wheelhouse/ with exactly the locked wheels for the chosen targets (connected build host).

    .venv/bin/python offline-wheels/fill.py [--targets all|current|cp311-x86_64,...] [--index-url URL] [--dest DIR]

For each target, the wheels listed for it in requirements.lock.json are fetched with ``pip download --no-deps
--require-hashes`` and that target's platform tags (a file already present with the right hash is kept), and every
file is re-hashed against requirements.lock. Wheels of other targets or versions are removed, so the folder holds
the chosen targets' wheels and nothing else. Then the sigforge wheel is built from this checkout (``pip wheel
--no-deps .``, hatchling is reproducible) and pinned by hash in ``sigforge.lock``; ``requirements.lock`` and its
.json are copied in, ``FILLED.json`` says which targets the folder serves, and ``SHA256SUMS`` (``sha256sum -c``
format) covers every file. Install on the box, with no network:

    pip install --no-index --find-links wheelhouse --require-hashes -r wheelhouse/requirements.lock \\
        -r wheelhouse/sigforge.lock
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wheelhouse_lib import (
    LOCK,
    LOCK_JSON,
    ROOT,
    WHEELHOUSE,
    Target,
    canonicalize_name,
    clean_pip_env,
    parse_targets,
    parse_wheel_filename,
    read_lock,
    read_lock_json,
    sha256_file,
)


class FillError(SystemExit):
    pass


def expected_wheels(
    targets: list[Target], lock: Path = LOCK, lock_json: Path = LOCK_JSON
) -> dict[str, tuple[Target, dict]]:  # type: ignore[type-arg]
    """{filename: (first target needing it, wheel entry)}, each entry checked against requirements.lock."""
    pins = read_lock(lock)
    manifest = read_lock_json(lock_json)
    wanted: dict[str, tuple[Target, dict]] = {}  # type: ignore[type-arg]
    for target in targets:
        entry = manifest["targets"].get(target.name)
        if entry is None:
            raise FillError(f"fill: requirements.lock.json has no target {target.name}; run lock.py")
        applying = {p.name: p for p in pins if p.applies_to(target)}
        listed = {canonicalize_name(w["name"]) for w in entry["wheels"]}
        if listed != set(applying):
            raise FillError(
                f"fill: requirements.lock and requirements.lock.json disagree on {target.name}: "
                f"{sorted(listed ^ set(applying))}; run lock.py again"
            )
        for wheel in entry["wheels"]:
            pin = applying[canonicalize_name(wheel["name"])]
            if pin.version != wheel["version"] or wheel["sha256"] not in pin.hashes:
                raise FillError(f"fill: {wheel['filename']} ({target.name}) is not the locked {pin.requirement}")
            wanted.setdefault(wheel["filename"], (target, wheel))
    return wanted


def download(dest: Path, target: Target, wheels: list[dict], index_url: str | None) -> None:  # type: ignore[type-arg]
    with tempfile.TemporaryDirectory() as tmp:
        reqs = Path(tmp) / "requirements.txt"
        reqs.write_text(
            "".join(f"{w['name']}=={w['version']} --hash=sha256:{w['sha256']}\n" for w in wheels), encoding="utf-8"
        )
        cmd = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--require-hashes",
            "--quiet",
            "-d",
            str(dest),
            "-r",
            str(reqs),
            *target.pip_platform_args(),
        ]
        if index_url:
            cmd += ["--index-url", index_url]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=clean_pip_env())
        if proc.returncode != 0:
            raise FillError(f"fill: pip download for {target.name} failed:\n{proc.stderr.strip()}")


def build_sigforge(dest: Path) -> Path:
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp, str(ROOT)],
            capture_output=True,
            text=True,
            check=False,
            env=clean_pip_env(),
        )
        if proc.returncode != 0:
            raise FillError(f"fill: building the sigforge wheel failed:\n{proc.stderr.strip()}")
        (built,) = Path(tmp).glob("sigforge-*.whl")
        target = dest / built.name
        shutil.move(str(built), target)
    return target


def fill(targets: list[Target], dest: Path, index_url: str | None = None) -> dict:  # type: ignore[type-arg]
    started = time.monotonic()
    wanted = expected_wheels(targets)
    dest.mkdir(parents=True, exist_ok=True)
    for stale in dest.iterdir():  # build output: anything not wanted now goes (other targets, old versions)
        if stale.is_file() and stale.name not in wanted:
            stale.unlink()
    missing: dict[Target, list[dict]] = {}  # type: ignore[type-arg]
    for filename, (target, wheel) in wanted.items():
        path = dest / filename
        if path.exists() and sha256_file(path) == wheel["sha256"]:
            continue
        path.unlink(missing_ok=True)
        missing.setdefault(target, []).append(wheel)
    for target, wheels in missing.items():
        print(f"fill: downloading {len(wheels)} wheels for {target.name}")
        download(dest, target, wheels, index_url)
    for filename, (target, wheel) in wanted.items():
        path = dest / filename
        if not path.exists():
            raise FillError(f"fill: pip did not fetch {filename} for {target.name}")
        if sha256_file(path) != wheel["sha256"]:
            raise FillError(f"fill: {filename} does not match its locked sha256")
    extra = sorted(p.name for p in dest.iterdir() if p.name not in wanted)
    if extra:
        raise FillError(f"fill: pip fetched files that are not locked: {extra}")

    sigforge = build_sigforge(dest)
    name, version, _build, _tags = parse_wheel_filename(sigforge.name)
    (dest / "sigforge.lock").write_text(
        f"# The sigforge wheel built by fill.py from this checkout; its dependencies are in requirements.lock.\n"
        f"{name}=={version} --hash=sha256:{sha256_file(sigforge)}\n",
        encoding="utf-8",
    )
    shutil.copy2(LOCK, dest / LOCK.name)
    shutil.copy2(LOCK_JSON, dest / LOCK_JSON.name)
    filled = {
        "targets": [t.name for t in targets],
        "sigforge": sigforge.name,
        "wheels": len(wanted) + 1,
        "bytes": sum(p.stat().st_size for p in dest.glob("*.whl")),
    }
    (dest / "FILLED.json").write_text(json.dumps(filled, indent=1) + "\n", encoding="utf-8")
    sums = [f"{sha256_file(p)}  {p.name}\n" for p in sorted(dest.iterdir()) if p.name != "SHA256SUMS"]
    (dest / "SHA256SUMS").write_text("".join(sums), encoding="utf-8")
    filled["seconds"] = round(time.monotonic() - started, 1)
    return filled


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--targets",
        default="all",
        help="all (default), current, or a comma list: cp311-x86_64,cp311-aarch64,cp312-x86_64,cp312-aarch64",
    )
    parser.add_argument("--index-url", help="package index to download from (default: pip's)")
    parser.add_argument("--dest", type=Path, default=WHEELHOUSE, help="wheelhouse folder (default %(default)s)")
    args = parser.parse_args(argv)
    result = fill(parse_targets(args.targets), args.dest, args.index_url)
    print(
        f"fill: {args.dest}: {result['wheels']} wheels, {result['bytes'] / 1e6:.1f} MB for "
        f"{', '.join(result['targets'])} in {result['seconds']} s (SHA256SUMS written)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
