#!/usr/bin/env python3
"""List every distribution that ships on the media with its licence, and copy the licence texts (an SBOM).

    .venv/bin/python offline-wheels/sbom.py --python /opt/sigforge/venv/bin/python [--wheelhouse DIR] --out DIR
    .venv/bin/python offline-wheels/sbom.py --wheelhouse offline-wheels/wheelhouse --out DIR

From an environment (the distributions installed for ``--python``, read with importlib.metadata inside that
interpreter) or from the wheels of a wheelhouse, writes ``DIR/licenses.json`` (name, version, licence expression,
licence field, licence classifiers, home page, sha256 of the wheel, licence files) and copies every LICENSE*,
LICENCE*, COPYING*, NOTICE* file of each dist-info (PEP 639 ``licenses/`` included) to
``DIR/licenses/<name>-<version>/``. With both options the environment is listed and each distribution gets the
sha256 of its wheel in the wheelhouse. Copyleft (GPL/LGPL) distributions are listed under ``copyleft``;
NOTICE-dramatiq.md is copied beside licenses.json. Exits 1 when a distribution has no licence information at all.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import HeaderParser
from pathlib import Path, PurePosixPath

from wheelhouse_lib import HERE, Target, canonicalize_name, parse_wheel_filename, sha256_file

LICENSE_FILE = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)", re.IGNORECASE)
COPYLEFT = re.compile(r"\b(A?L?GPL|GNU (Lesser |Library |Affero )?General Public)", re.IGNORECASE)
NOTICES = {"dramatiq": "NOTICE-dramatiq.md"}

# Run inside the environment's own interpreter: prints its distributions as JSON.
_PROBE = r"""
import json, platform, re, sys
from importlib import metadata
pat = re.compile(r"^(LICEN[CS]E|COPYING|NOTICE)", re.I)
dists = []
for d in metadata.distributions():
    files = []
    for f in d.files or ():
        parts = f.parts
        if parts and parts[0].endswith(".dist-info") and pat.match(parts[-1]):
            files.append({"name": "/".join(parts[1:]), "path": str(f.locate())})
    m = d.metadata
    dists.append({"metadata": {k: m.get_all(k) for k in set(m.keys())}, "files": files})
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "machine": platform.machine(), "dists": dists}))
"""


def _one(meta: dict, key: str) -> str | None:  # type: ignore[type-arg]
    values = meta.get(key) or []
    return values[0] if values else None


def _record(meta: dict, files: dict[str, bytes]) -> dict:  # type: ignore[type-arg]
    name = _one(meta, "Name") or "?"
    urls = dict(u.split(",", 1) for u in meta.get("Project-URL") or [] if "," in u)
    urls = {k.strip().lower(): v.strip() for k, v in urls.items()}
    home = (
        _one(meta, "Home-page")
        or urls.get("homepage")
        or urls.get("home")
        or urls.get("source")
        or urls.get("repository")
        or (next(iter(urls.values())) if urls else None)
    )
    license_field = _one(meta, "License")
    return {
        "name": canonicalize_name(name),
        "version": _one(meta, "Version"),
        "license_expression": _one(meta, "License-Expression"),
        "license": license_field
        if license_field is None or len(license_field) <= 300
        else license_field.splitlines()[0][:300] + " [full text in license_files]",
        "classifiers": sorted(c for c in meta.get("Classifier") or [] if c.startswith("License ::")),
        "home_page": home,
        "_files": files,
    }


def from_environment(python: str) -> tuple[list[dict], Target | None]:  # type: ignore[type-arg]
    proc = subprocess.run([python, "-I", "-c", _PROBE], capture_output=True, text=True, check=True)
    data = json.loads(proc.stdout)
    records = []
    for dist in data["dists"]:
        files = {f["name"]: Path(f["path"]).read_bytes() for f in dist["files"] if Path(f["path"]).is_file()}
        records.append(_record(dist["metadata"], files))
    try:
        target = Target(data["python"], data["machine"])
    except (KeyError, ValueError):
        target = None
    return records, target


def _wheel_metadata(wheel: Path) -> tuple[dict, dict[str, bytes]]:  # type: ignore[type-arg]
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        (meta_name,) = [n for n in names if n.count("/") == 1 and n.endswith(".dist-info/METADATA")]
        info = meta_name.split("/")[0]
        msg = HeaderParser().parsestr(zf.read(meta_name).decode("utf-8"))
        meta = {k: msg.get_all(k) for k in set(msg.keys())}
        files = {}
        for n in names:
            p = PurePosixPath(n)
            if p.parts[0] == info and len(p.parts) > 1 and LICENSE_FILE.match(p.name):
                files["/".join(p.parts[1:])] = zf.read(n)
    return meta, files


def wheel_hashes(wheelhouse: Path) -> dict[tuple[str, str], list[tuple[Path, str]]]:
    out: dict[tuple[str, str], list[tuple[Path, str]]] = {}
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version, _b, _t = parse_wheel_filename(wheel.name)
        out.setdefault((canonicalize_name(name), str(version)), []).append((wheel, sha256_file(wheel)))
    return out


def build(python: str | None, wheelhouse: Path | None, out: Path) -> dict:  # type: ignore[type-arg]
    hashes = wheel_hashes(wheelhouse) if wheelhouse else {}
    target = None
    if python:
        records, target = from_environment(python)
        source = f"environment of {python}"
    else:
        assert wheelhouse is not None
        records = []
        for (_name, _version), wheels in sorted(hashes.items()):
            meta, files = _wheel_metadata(wheels[0][0])
            records.append(_record(meta, files))
        source = f"wheelhouse {wheelhouse}"
    lic_dir = out / "licenses"
    shutil.rmtree(lic_dir, ignore_errors=True)
    lic_dir.mkdir(parents=True)
    packages, copyleft, unknown = [], [], []
    for rec in sorted(records, key=lambda r: (r["name"], r["version"] or "")):
        files: dict[str, bytes] = rec.pop("_files")
        folder = lic_dir / f"{rec['name']}-{rec['version']}"
        rec["license_files"] = []
        for rel, data in sorted(files.items()):
            dest = folder / rel
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(data)
            rec["license_files"].append(dest.relative_to(out).as_posix())
        wheels = hashes.get((rec["name"], str(rec["version"])), [])
        if python and target is not None and len(wheels) > 1:  # a multi-target wheelhouse: this env's wheel only
            tags = set(target.tags())
            wheels = [w for w in wheels if tags & set(parse_wheel_filename(w[0].name)[3])]
        rec["wheel"] = [{"file": w.name, "sha256": h} for w, h in wheels]
        text = " ".join(filter(None, [rec["license_expression"], rec["license"], *rec["classifiers"]]))
        if COPYLEFT.search(text):
            rec["copyleft"] = True
            copyleft.append(rec["name"])
        if rec["name"] in NOTICES:
            rec["notice"] = NOTICES[rec["name"]]
            shutil.copy2(HERE / NOTICES[rec["name"]], out / NOTICES[rec["name"]])
        if not text and not rec["license_files"]:
            unknown.append(rec["name"])
        packages.append(rec)
    report = {
        "generated_by": "offline-wheels/sbom.py",
        "source": source,
        "packages": packages,
        "copyleft": copyleft,
        "no_license_information": unknown,
        "notes": "Copyleft (LGPL) distributions are installed as separate, unmodified wheels in the release venv and "
        "can be replaced by the user; see NOTICE-dramatiq.md.",
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "licenses.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--python", help="interpreter of the environment to list (e.g. the release venv's)")
    parser.add_argument("--wheelhouse", type=Path, help="wheelhouse to list, or to take wheel hashes from")
    parser.add_argument("--out", type=Path, required=True, help="folder for licenses.json and licenses/")
    args = parser.parse_args(argv)
    if not args.python and not args.wheelhouse:
        parser.error("give --python, --wheelhouse or both")
    report = build(args.python, args.wheelhouse, args.out)
    print(
        f"sbom: {len(report['packages'])} distributions -> {args.out / 'licenses.json'}; "
        f"copyleft: {', '.join(report['copyleft']) or 'none'}"
    )
    if report["no_license_information"]:
        print(f"sbom: no licence information for {report['no_license_information']}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
