"""Fetch the ``.deb`` files of one Debian-package toolchain spec (``debian.SPECS``) on the connected build host.

Usage::

    python installer/toolchains/fetch_debs.py --spec arm-none-eabi --out .cache/debs/arm-none-eabi
    python installer/toolchains/fetch_debs.py --spec qemu --out DIR [--list]

Downloads (``apt-get download``, never installs) the spec's packages plus the shared-library packages they depend on,
followed recursively through ``Depends``/``Pre-Depends`` of this host's apt candidates. Only ``lib*`` packages and
the spec's own ``packages``/``extra`` are followed: programs a package merely recommends or calls (python3, xdot,
debconf...) are not the spec's business. What every Debian-family box has is left out (``debian.BASE_PACKAGES``:
glibc, libstdc++, libgcc, zlib...). Idempotent: a package whose ``NAME_*.deb`` is already in ``--out`` is not fetched
again, and after a complete fetch an unchanged spec asks apt nothing (``--out``'s ``.fetch_debs-SPEC`` stamp).
``--list`` prints the resolved package names and fetches nothing. Exit status 0 on success, 1 when
``apt-get download`` fails or apt knows none of a spec package (after one ``apt-get update``).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from debian import BASE_PACKAGES, SPECS, Spec


def _show(packages: list[str]) -> dict[str, str]:
    """``apt-cache show`` records of the candidates, by package name (absent: no installable candidate)."""
    argv = ["apt-cache", "show", "--no-all-versions", *packages]
    out = subprocess.run(argv, check=False, capture_output=True, text=True).stdout
    records = {}
    for record in out.split("\n\n"):
        if match := re.search(r"^Package: (\S+)", record, re.MULTILINE):
            records.setdefault(match.group(1), record)
    return records


def _depends(record: str) -> list[str]:
    """The first alternative of every ``Depends``/``Pre-Depends`` group, without version or architecture."""
    names: list[str] = []
    for line in record.splitlines():
        field, _, value = line.partition(":")
        if field not in ("Depends", "Pre-Depends"):
            continue
        for group in value.split(","):
            first = group.split("|")[0].strip()
            name = re.split(r"[\s(:]", first, maxsplit=1)[0]
            if name:
                names.append(name)
    return names


def resolve(spec: Spec) -> list[str]:
    """The spec's packages and, recursively, the shared-library packages they need that a box may lack."""
    wanted = (*spec.packages, *spec.extra)
    seen: set[str] = set()
    found: list[str] = []
    level = list(wanted)
    while level:  # breadth first, one apt-cache call per level
        level = sorted({n for n in level if n not in seen and n not in BASE_PACKAGES and n not in spec.skip})
        seen.update(level)
        records = _show(level) if level else {}
        for name in level:
            if name not in records:
                print(f"fetch_debs.py: {name}: no installable candidate (a virtual package?); skipped", file=sys.stderr)
        found += records
        level = [dep for r in records.values() for dep in _depends(r) if dep.startswith("lib") or dep in wanted]
    return sorted(found)


def _stamp(spec_name: str) -> str:
    """What the last complete fetch was made from: the spec and the exclusion list."""
    text = f"{SPECS[spec_name]!r} {sorted(BASE_PACKAGES)!r}"
    return hashlib.sha256(text.encode()).hexdigest()


def fetch(spec_name: str, out: Path) -> list[str]:
    """Download what ``resolve`` names into ``out`` unless already there; the package names fetched now.

    A complete fetch leaves ``out/.fetch_debs-SPEC`` (the spec's hash and the package names): while the spec is
    unchanged and every named .deb is present, the next call asks apt nothing at all.
    """
    out.mkdir(parents=True, exist_ok=True)
    stamp = out / f".fetch_debs-{spec_name}"
    if stamp.exists():
        digest, *names = stamp.read_text().split()
        if digest == _stamp(spec_name) and all(any(out.glob(f"{name}_*.deb")) for name in names):
            return []
    packages = resolve(SPECS[spec_name])
    if not set(SPECS[spec_name].packages) <= set(packages):
        # No package lists yet (a fresh container) or stale ones: refresh once (needs root), then resolve again.
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        packages = resolve(SPECS[spec_name])
        absent = sorted(set(SPECS[spec_name].packages) - set(packages))
        if absent:
            raise SystemExit(f"fetch_debs.py: apt knows no candidate for {', '.join(absent)} (check sources.list)")
    missing = [name for name in packages if not any(out.glob(f"{name}_*.deb"))]
    if missing:
        argv = ["apt-get", "download", "-qq", *missing]
        if subprocess.run(argv, check=False, cwd=out).returncode != 0:
            # A stale package list names versions the mirror no longer has: refresh once (needs root), then retry.
            subprocess.run(["apt-get", "update", "-qq"], check=False)
            subprocess.run(argv, cwd=out, check=True)
    stamp.write_text("\n".join([_stamp(spec_name), *packages]) + "\n")
    return missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, choices=sorted(SPECS))
    parser.add_argument("--out", type=Path, required=True, help="directory for the .deb files (created)")
    parser.add_argument("--list", action="store_true", help="print the resolved packages, fetch nothing")
    args = parser.parse_args(argv)
    if args.list:
        print("\n".join(resolve(SPECS[args.spec])))
        return 0
    try:
        fetched = fetch(args.spec, args.out)
    except subprocess.CalledProcessError as exc:
        print(f"fetch_debs.py: {' '.join(exc.cmd)} failed with status {exc.returncode}", file=sys.stderr)
        return 1
    print(f"fetch_debs.py: {args.spec}: {len(fetched)} fetched into {args.out}" if fetched
          else f"fetch_debs.py: {args.spec}: all .debs present in {args.out}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
