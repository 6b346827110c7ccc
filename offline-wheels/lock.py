#!/usr/bin/env python3
"""Resolve the runtime requirements for each target and write the hash-locked requirements (connected build host).

    .venv/bin/python offline-wheels/lock.py [--index-url URL] [--glibc 2.28]

1. Checks that ``requirements.in`` is exactly ``[project].dependencies`` of pyproject.toml (nothing dev).
2. Resolves it once per target (CPython 3.11/3.12 x Linux x86_64/aarch64) with ``uv pip compile --python-version
   --python-platform --only-binary :all:``, which evaluates markers for that target (pip evaluates them against the
   running interpreter whatever ``--python-version`` says). uv lives in a throwaway venv under ``.cache/``.
3. Downloads, per target, the wheel pip selects for each pin (``pip download --no-deps --only-binary=:all:
   --platform ... --python-version ...``) and hashes it. A pin without a wheel for a target is an error.
4. Merges: one line per (name, version) with every target's wheel hash, and a marker when the pin applies to only
   some targets (numpy/scipy differ between 3.11 and 3.12). Writes ``requirements.lock`` (what pip reads) and
   ``requirements.lock.json`` (which wheel belongs to which target; what fill.py downloads).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections import defaultdict
from pathlib import Path

from wheelhouse_lib import (
    ALL_TARGETS,
    CACHE,
    GLIBC_FLOOR,
    LOCK,
    LOCK_JSON,
    MACHINES,
    PYTHONS,
    REQUIREMENTS_IN,
    ROOT,
    Requirement,
    Target,
    Version,
    canonicalize_name,
    clean_pip_env,
    parse_wheel_filename,
    sha256_file,
)

UV_VERSION = "0.13.8"  # the resolver, installed only into .cache/lock-tools (never a project dependency)


class LockError(SystemExit):
    pass


def runtime_requirements() -> list[str]:
    """pyproject's [project].dependencies, checked against requirements.in."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = sorted(str(Requirement(r)) for r in pyproject["project"]["dependencies"])
    lines = [ln.split("#", 1)[0].strip() for ln in REQUIREMENTS_IN.read_text(encoding="utf-8").splitlines()]
    listed = sorted(str(Requirement(ln)) for ln in lines if ln)
    if declared != listed:
        missing = sorted(set(declared) - set(listed))
        extra = sorted(set(listed) - set(declared))
        raise LockError(
            f"requirements.in is not pyproject's runtime dependencies: missing {missing}, extra {extra}. "
            "Copy [project].dependencies into offline-wheels/requirements.in and lock again."
        )
    return listed


def uv_binary() -> Path:
    tools = CACHE / "lock-tools"
    uv = tools / "bin" / "uv"
    if uv.exists():
        return uv
    print(f"lock: installing uv {UV_VERSION} into {tools} (throwaway)")
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True)
    subprocess.run(
        [str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet", f"uv=={UV_VERSION}"],
        check=True,
        env=clean_pip_env(),
    )
    return uv


def resolve(uv: Path, target: Target, glibc: tuple[int, int], index_url: str | None) -> dict[str, str]:
    """{canonical name: version} of the closure of requirements.in on ``target``."""
    cmd = [
        str(uv),
        "pip",
        "compile",
        str(REQUIREMENTS_IN),
        "--python-version",
        target.python,
        "--python-platform",
        f"{target.machine}-manylinux_{glibc[0]}_{glibc[1]}",
        "--only-binary",
        ":all:",
        "--no-header",
        "--no-annotate",
        "--no-config",
        "--quiet",
    ]
    if index_url:
        cmd += ["--index-url", index_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LockError(
            f"lock: resolving for {target.name} failed (a requirement has no wheel for this target, or "
            f"the ranges conflict):\n{proc.stderr.strip()}"
        )
    pins: dict[str, str] = {}
    for raw in proc.stdout.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        req = Requirement(line)
        (spec,) = req.specifier
        pins[canonicalize_name(req.name)] = spec.version
    return pins


def download(target: Target, pins: dict[str, str], glibc: tuple[int, int], index_url: str | None) -> dict[str, dict]:  # type: ignore[type-arg]
    """Download the wheel pip picks for each pin on ``target``; {name: {version, filename, sha256, size}}."""
    dest = CACHE / "lock-downloads" / target.name
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    reqs = dest.parent / f"{target.name}.txt"
    reqs.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.items())), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--quiet",
        "-d",
        str(dest),
        "-r",
        str(reqs),
        *target.pip_platform_args(glibc),
    ]
    if index_url:
        cmd += ["--index-url", index_url]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=clean_pip_env())
    if proc.returncode != 0:
        missing = re.findall(r"No matching distribution found for (\S+)", proc.stderr)
        raise LockError(
            f"lock: {', '.join(missing) or 'a pin'} has no wheel for {target.name} (CPython {target.python}, "
            f"manylinux glibc <= {glibc[0]}.{glibc[1]}, {target.machine}). Every pin needs a wheel for every target "
            "because the box installs with --only-binary semantics and no compiler: bound that requirement to a "
            "version with such wheels (pyproject + requirements.in), raise --glibc, or drop the target.\n"
            f"pip said:\n{proc.stderr.strip()}"
        )
    compatible = set(target.tags(glibc))
    found: dict[str, dict] = {}  # type: ignore[type-arg]
    for path in sorted(dest.iterdir()):
        if not path.name.endswith(".whl"):
            raise LockError(f"lock: pip fetched a non-wheel {path.name} for {target.name}")
        name, version, _build, tags = parse_wheel_filename(path.name)
        name = canonicalize_name(name)
        if name not in pins or version != Version(pins[name]):
            raise LockError(f"lock: unexpected wheel {path.name} for {target.name}")
        if not compatible & set(tags):
            raise LockError(f"lock: {path.name} does not fit {target.name}")
        if name in found:
            raise LockError(f"lock: two wheels for {name} on {target.name}: {found[name]['filename']}, {path.name}")
        found[name] = {
            "version": pins[name],
            "filename": path.name,
            "sha256": sha256_file(path),
            "size": path.stat().st_size,
        }
    absent = sorted(set(pins) - set(found))
    if absent:
        raise LockError(f"lock: no wheel downloaded for {absent} on {target.name}")
    return found


def marker_for(targets: set[Target]) -> str | None:
    """The PEP 508 marker that is true on exactly ``targets`` among the four."""
    if targets == set(ALL_TARGETS):
        return None
    machines_by_python = {py: {t.machine for t in targets if t.python == py} for py in PYTHONS}
    subsets = {frozenset(m) for m in machines_by_python.values()}
    if len(subsets) == 1:  # the same machines on every Python: a machine-only marker
        machines = sorted(next(iter(subsets)))
        return " or ".join(f'platform_machine == "{m}"' for m in machines)
    terms = []
    for py, machines in machines_by_python.items():
        if machines == set(MACHINES):
            terms.append(f'python_version == "{py}"')
        else:
            terms += [f'(python_version == "{py}" and platform_machine == "{m}")' for m in sorted(machines)]
    if len(terms) == 1:
        return terms[0].removeprefix("(").removesuffix(")")
    return " or ".join(terms)


def write_lock(per_target: dict[Target, dict[str, dict]], glibc: tuple[int, int]) -> tuple[int, int]:  # type: ignore[type-arg]
    entries: dict[tuple[str, str], dict] = defaultdict(lambda: {"targets": set(), "hashes": set()})  # type: ignore[type-arg]
    for target, wheels in per_target.items():
        for name, wheel in wheels.items():
            entry = entries[(name, wheel["version"])]
            entry["targets"].add(target)
            entry["hashes"].add(wheel["sha256"])
    out = [
        "# Hash-locked runtime requirements of sigforge for the offline wheelhouse. GENERATED by lock.py from",
        "# requirements.in (= pyproject's [project].dependencies); do not edit by hand: change pyproject, copy",
        "# the change into requirements.in and run `.venv/bin/python offline-wheels/lock.py` on the connected host.",
        f"# Targets: {', '.join(t.name for t in ALL_TARGETS)}; Linux, glibc >= {glibc[0]}.{glibc[1]} (manylinux).",
        "# Each --hash is the wheel pip selects for one target (requirements.lock.json says which). Install with:",
        "#   pip install --no-index --find-links wheelhouse --require-hashes -r requirements.lock",
        "",
    ]
    for (name, version), entry in sorted(entries.items()):
        marker = marker_for(entry["targets"])
        head = f"{name}=={version}" + (f" ; {marker}" if marker else "")
        hashes = [f"    --hash=sha256:{h}" for h in sorted(entry["hashes"])]
        out.append(" \\\n".join([head, *hashes]))
    LOCK.write_text("\n".join(out) + "\n", encoding="utf-8")
    manifest = {
        "generated_by": "offline-wheels/lock.py",
        "glibc_floor": f"{glibc[0]}.{glibc[1]}",
        "resolver": f"uv {UV_VERSION}",
        "targets": {
            t.name: {
                "python": t.python,
                "machine": t.machine,
                "platforms": t.platforms(glibc),
                "wheels": [{"name": n, **w} for n, w in sorted(per_target[t].items())],
            }
            for t in ALL_TARGETS
        },
    }
    LOCK_JSON.write_text(json.dumps(manifest, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return len(entries), sum(len(e["hashes"]) for e in entries.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index-url", help="package index to resolve and download from (default: pip's and uv's)")
    parser.add_argument(
        "--glibc",
        default=f"{GLIBC_FLOOR[0]}.{GLIBC_FLOOR[1]}",
        help="oldest glibc of the boxes (manylinux floor); default %(default)s",
    )
    args = parser.parse_args(argv)
    major, minor = (int(x) for x in args.glibc.split("."))
    glibc = (major, minor)
    runtime_requirements()
    uv = uv_binary()
    per_target = {}
    for target in ALL_TARGETS:
        pins = resolve(uv, target, glibc, args.index_url)
        per_target[target] = download(target, pins, glibc, args.index_url)
        size = sum(w["size"] for w in per_target[target].values())
        print(f"lock: {target.name}: {len(pins)} pins, {size / 1e6:.1f} MB of wheels")
    pins, hashes = write_lock(per_target, glibc)
    print(f"lock: wrote {LOCK.relative_to(ROOT)} ({pins} pins, {hashes} hashes) and {LOCK_JSON.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
