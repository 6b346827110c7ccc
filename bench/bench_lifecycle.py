"""The appliance's lifecycle, timed (issue 5): install from media, an update with a migration, an automatic rollback.

Usage::

    .venv/bin/python bench/bench_lifecycle.py [--rounds 3] [--install-rounds 1] [--postgres auto|yes|no]

Reuses the test kits, so what is timed is what the tests check:

* **install** (``tests/install/mediakit``): the media built by ``installer/build_media.py`` from the frozen onedir
  (``.cache/frozen``, as ``tests/install``; a site-Python tree with ``SFTEST_INSTALL_RELEASE=site``), the offline
  wheelhouse and the host-gcc toolchain bundle; ``sh install.sh --prefix DIR --no-systemd`` inside ``unshare -n``
  (loopback only), timed from its start until ``/readyz`` answers 200 (install.sh itself waits for it; a probe
  confirms). Baseline: ``tar -xf`` of the same media bundle into the same file system (unpacking only).
* **update** (``tests/updates/releasekit``): a running v1 box (pidfile mode, rows and an artifact), ``sigforge
  update apply`` of the signed v2 bundle (+ one migration), timed until the command returns with v2 answering
  ``/readyz`` (the updater waits for it). Baseline, same run, on an equal box: the unavoidable work by hand — stop
  v1, ``releases/2.0.0/bin/sigforge db upgrade``, switch ``current``, start v2 until ``/readyz`` 200 (no copy,
  signature check, unpack, backup, journal or audit).
* **rollback**: ``update apply`` of a v2 whose services do not start (``broken_up``), so the health check fails
  after the migration; the rollback is timed from the ``update.failed`` audit event to ``update.rollback.healthy``
  (v1 answering ``/readyz`` 200 again), and the whole failed apply is shown too. Baseline, same run: restore the
  pre-migration database copy (SQLite backup API), switch back, start v1 until ``/readyz`` 200 — v2 is stopped
  first, untimed, as the failed release's services have died already. None on PostgreSQL: its restore is the
  updater's own path (v1's ``update restore-db`` loads the dump), so no cheaper baseline is shown there.

The test releases are site-Python trees (a copy of ``src/sigforge`` run by the venv's Python): the update and
rollback rows do not include the frozen binary's slower start-up (see the frozen section). With PostgreSQL on
127.0.0.1:5432 (``--postgres auto``), the update and rollback rows are repeated on a fresh PostgreSQL database.

Medians of ``--rounds`` (install: ``--install-rounds``); prints markdown (progress goes to stderr).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "install"), str(REPO / "tests" / "updates")]

import mediakit  # noqa: E402
from releasekit import REPO_HEAD, V2_REV, Box, bundle, free_port, make_tree, migration, running_v1  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402

from realservices import _reachable, scratch_postgres_database  # noqa: E402
from sigforge.cli.service_manager import PidfileServices  # noqa: E402
from support import child_env  # noqa: E402
from toolchainkit import new_keys  # noqa: E402

GOALS = {"install": 60.0, "update": 30.0, "rollback": 15.0}
INSTALLED = "opt/sigforge/current/bin/sigforge"
READYZ_PROBE = """
import sys, time, urllib.request
deadline = time.monotonic() + 120
while True:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/readyz", timeout=2) as r:
            if r.status == 200:
                break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("readyz is not 200 after 120 s")
    time.sleep(0.05)
"""


def say(*args: object) -> None:
    print(*args, file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values)


# ---- install ---------------------------------------------------------------------------------------------------------


@dataclass
class InstallResult:
    install_s: list[float]
    tar_s: list[float]
    media_build_s: float
    media_mb: float
    release_kind: str


def _install_once(media: Path, fingerprint: str, work: Path) -> float:
    prefix = work / "prefix"
    prefix.mkdir(parents=True)
    port = free_port()
    sf = f"{prefix / INSTALLED} --config {prefix / 'etc/sigforge/sigforge.toml'}"
    script = f"""
set -e
ip link set lo up
t0=$(date +%s.%N)
sh {media}/install.sh --prefix {prefix} --no-systemd --port {port} --yes-fingerprint '{fingerprint}' >&2
{sys.executable} -c '{READYZ_PROBE}' {port}
t1=$(date +%s.%N)
echo "LIFECYCLE_INSTALL $t0 $t1"
{sf} service stop --prefix {prefix} --services pidfile >&2
"""
    try:
        done = subprocess.run(["unshare", "-n", "sh", "-c", script], capture_output=True, text=True,
                              env=child_env(TMPDIR=str(work)), timeout=900, check=False)  # fmt: skip
    finally:
        current = prefix / "opt" / "sigforge" / "current"
        if current.exists():
            PidfileServices(current, prefix / "var" / "lib" / "sigforge", stop_timeout_s=60).stop()
    if done.returncode != 0:
        raise SystemExit(f"install.sh failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("LIFECYCLE_INSTALL "))
    t0, t1 = (float(x) for x in line.split()[1:])
    return t1 - t0


def _tar_once(bundle_file: Path, work: Path) -> float:
    dest = work / "untar"
    dest.mkdir(parents=True)
    start = time.perf_counter()
    subprocess.run(["tar", "-xf", str(bundle_file), "-C", str(dest)], check=True)
    subprocess.run(["sync", "-f", str(dest)], check=True)  # install.sh's unpack fsyncs what it writes
    elapsed = time.perf_counter() - start
    shutil.rmtree(dest)
    return elapsed


def bench_install(rounds: int, tmp: Path) -> InstallResult:
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, check=False)
    if probe.returncode != 0:
        raise SystemExit(f"cannot create a network namespace here: {probe.stderr.decode(errors='replace')}")
    if not (mediakit.WHEELHOUSE / "SHA256SUMS").is_file():
        raise SystemExit(f"{mediakit.WHEELHOUSE} is not filled (make wheelhouse)")
    say("install: inputs (frozen build, host-gcc bundle: cached after the first run)")
    for sub in ("inputs", "media-build"):
        (tmp / sub).mkdir(parents=True)
    inp = mediakit.inputs(tmp / "inputs")
    start = time.perf_counter()
    media = mediakit.build(inp, tmp / "media-build" / "media")
    media_build_s = time.perf_counter() - start
    bundle_file = next(media.glob("sigforge-*.media"))
    installs, tars = [], []
    for i in range(rounds):
        tars.append(_tar_once(bundle_file, tmp / f"tar-{i}"))
        say(f"install: round {i + 1}/{rounds}")
        installs.append(_install_once(media, inp.fingerprint, tmp / f"install-{i}"))
        say(f"  install {installs[-1]:.1f} s, tar -xf {tars[-1]:.2f} s")
        shutil.rmtree(tmp / f"install-{i}", ignore_errors=True)
    return InstallResult(installs, tars, media_build_s, bundle_file.stat().st_size / 1e6, inp.release_kind)


# ---- update and rollback ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Kit:
    keys: dict[str, Any]
    v1: Path
    v2: Path
    v2_bundle: Path
    v2_unhealthy: Path


def build_kit(root: Path) -> Kit:
    keys = new_keys()
    m = {f"{V2_REV}_release_notes.py": migration(V2_REV, REPO_HEAD, "release_notes")}
    v1 = make_tree(root / "1.0.0", "1.0.0")
    v2 = make_tree(root / "2.0.0", "2.0.0", migrations=m)
    unhealthy = make_tree(root / "2.0.0-unhealthy", "2.0.0", migrations=m, broken_up=True)
    return Kit(keys, v1, v2, bundle(v2, root / "v2.bundle", "2.0.0", keys["release"]),
               bundle(unhealthy, root / "v2-unhealthy.bundle", "2.0.0", keys["release"]))  # fmt: skip


def _postgres_database() -> contextlib.AbstractContextManager[str]:
    return scratch_postgres_database("sfbench")


def _events(box: Box) -> list[tuple[str, datetime]]:
    engine = create_engine(box.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text("SELECT action, occurred_at FROM audit_events WHERE subject_type = 'update' "
                                     "ORDER BY occurred_at, id")).all()  # fmt: skip
    finally:
        engine.dispose()
    return [(str(a), t if isinstance(t, datetime) else datetime.fromisoformat(str(t))) for a, t in rows]


def _step_times(box: Box, started: datetime) -> dict[str, float]:
    """Seconds spent in each step of the last operation (from its audit events: each is written when it ends)."""
    out: dict[str, float] = {}
    previous = _naive_utc(started)
    for action, stamp in _events(box):
        at = _naive_utc(stamp)
        out[action.removeprefix("update.")] = (at - previous).total_seconds()
        previous = at
    return out


def _naive_utc(stamp: datetime) -> datetime:
    return stamp.astimezone(UTC).replace(tzinfo=None) if stamp.tzinfo is not None else stamp


def _history_started(box: Box) -> datetime:
    return datetime.fromisoformat(box.history()[-1]["started"])


def update_once(kit: Kit, work: Path, database_url: str | None) -> tuple[float, dict[str, float]]:
    with running_v1(work, kit.keys, kit.v1, database_url=database_url) as box:
        start = time.perf_counter()
        done = box.update("apply", str(kit.v2_bundle))
        elapsed = time.perf_counter() - start
        assert done.returncode == 0, done.stdout + done.stderr + box.log()
        assert box.ready() == (200, "2.0.0"), box.log()
        return elapsed, _step_times(box, _history_started(box))


def rollback_once(kit: Kit, work: Path, database_url: str | None) -> tuple[float, float]:
    """(the whole failed apply, its rollback: ``update.failed`` to ``update.rollback.healthy``)."""
    with running_v1(work, kit.keys, kit.v1, database_url=database_url) as box:
        start = time.perf_counter()
        done = box.update("apply", str(kit.v2_unhealthy))
        elapsed = time.perf_counter() - start
        assert done.returncode == 1 and "failed at step healthy" in done.stdout, done.stdout + done.stderr
        assert box.ready() == (200, "1.0.0"), box.log()
        record = box.history()[-1]
        assert record["result"] == "rolled-back", record
        at = {action: _naive_utc(stamp) for action, stamp in _events(box)}
        return elapsed, (at["update.rollback.healthy"] - at["update.failed"]).total_seconds()


def baseline_once(kit: Kit, work: Path, database_url: str | None) -> tuple[float, float | None]:
    """(stop v1 + migrate + switch + start v2 to ready, restore + switch back + start v1 to ready)."""
    with running_v1(work, kit.keys, kit.v1, database_url=database_url) as box:
        shutil.copytree(kit.v2, box.releases / "2.0.0", symlinks=True)  # staging is not part of the baseline
        saved = work / "saved.sqlite3"
        start = time.perf_counter()
        box.stop()
        stopped = time.perf_counter()
        if database_url is None:  # the copy a rollback needs (untimed here; the updater's backup step is timed)
            with contextlib.closing(box.db()) as src, contextlib.closing(sqlite3.connect(saved)) as dst:
                src.backup(dst)
        start += time.perf_counter() - stopped
        done = box.sigforge("db", "upgrade", binary=box.releases / "2.0.0" / "bin" / "sigforge")
        assert done.returncode == 0, done.stdout + done.stderr
        _switch(box, "2.0.0")
        box.start()  # waits for /readyz 200 with x-sigforge-version 2.0.0
        forward = time.perf_counter() - start
        if database_url is not None:
            return forward, None
        box.stop()  # untimed: in the failed update the new release's services have died already
        start = time.perf_counter()
        with contextlib.closing(sqlite3.connect(saved)) as src, contextlib.closing(box.db()) as dst:
            src.backup(dst)
        _switch(box, "1.0.0")
        box.start()
        return forward, time.perf_counter() - start


def _switch(box: Box, version: str) -> None:
    tmp_link = box.current.with_name("current.tmp")
    tmp_link.symlink_to(f"releases/{version}")
    tmp_link.rename(box.current)


@dataclass
class UpdateResult:
    update_s: list[float]
    steps: list[dict[str, float]]
    failed_apply_s: list[float]
    rollback_s: list[float]
    base_update_s: list[float]
    base_rollback_s: list[float]


Database = Callable[[], contextlib.AbstractContextManager[str | None]]


def bench_updates(kit: Kit, rounds: int, tmp: Path, database: Database, label: str) -> UpdateResult:
    res = UpdateResult([], [], [], [], [], [])
    for i in range(rounds):  # interleaved: each round measures the baseline and both operations
        say(f"{label}: round {i + 1}/{rounds}")
        with database() as url:
            forward, back = baseline_once(kit, tmp / f"{label}-base-{i}", url)
        res.base_update_s.append(forward)
        if back is not None:
            res.base_rollback_s.append(back)
        with database() as url:
            elapsed, steps = update_once(kit, tmp / f"{label}-update-{i}", url)
        res.update_s.append(elapsed)
        res.steps.append(steps)
        with database() as url:
            whole, rollback = rollback_once(kit, tmp / f"{label}-rollback-{i}", url)
        res.failed_apply_s.append(whole)
        res.rollback_s.append(rollback)
        say(f"  baseline {forward:.1f} s / {'-' if back is None else f'{back:.1f}'} s, update {elapsed:.1f} s, "
            f"failed apply {whole:.1f} s (rollback {rollback:.1f} s)")  # fmt: skip
        for sub in tmp.glob(f"{label}-*-{i}"):
            shutil.rmtree(sub, ignore_errors=True)
    return res


@contextlib.contextmanager
def _no_database() -> Iterator[None]:
    yield None


# ---- report ----------------------------------------------------------------------------------------------------------


def _verdict(value: float, goal: float) -> str:
    return f"≤ {goal:.0f} s: {'met' if value <= goal else '**not met**'}"


def report(inst: InstallResult | None, runs: dict[str, UpdateResult], rounds: int) -> None:
    print("| operation | time (median) | same-run baseline | ratio | goal |")
    print("|---|---|---|---|---|")
    if inst is not None:
        i, t = median(inst.install_s), median(inst.tar_s)
        n = len(inst.install_s)
        print(
            f"| install from media (`install.sh --prefix --no-systemd`, {inst.release_kind} release) to `/readyz` "
            f"200 | {i:.1f} s{'' if n > 1 else ' (one run)'} | `tar -xf` of the media bundle "
            f"({inst.media_mb:.0f} MB) + sync: {t:.2f} s | {i / t:.1f}x | {_verdict(i, GOALS['install'])} |"
        )
    for db, r in runs.items():
        u, bu = median(r.update_s), median(r.base_update_s)
        print(
            f"| `update apply` v1 → v2 with a migration ({db}) to v2 healthy | {u:.1f} s | stop + `db upgrade` + "
            f"start to `/readyz` 200: {bu:.1f} s | {u / bu:.2f}x | {_verdict(u, GOALS['update'])} |"
        )
        rb, whole = median(r.rollback_s), median(r.failed_apply_s)
        if r.base_rollback_s:
            br = median(r.base_rollback_s)
            base, ratio = f"SQLite restore + start to `/readyz` 200: {br:.1f} s", f"{rb / br:.2f}x"
        else:
            base, ratio = "- (the restore is the updater's own `restore-db`)", "-"
        print(
            f"| automatic rollback ({db}): health check failed → v1 healthy (whole failed apply {whole:.1f} s) "
            f"| {rb:.1f} s | {base} | {ratio} | {_verdict(rb, GOALS['rollback'])} |"
        )
    print()
    for db, r in runs.items():
        mid = sorted(range(len(r.update_s)), key=lambda k: r.update_s[k])[len(r.update_s) // 2]
        parts = ", ".join(f"{k} {v:.1f}" for k, v in r.steps[mid].items())
        rest = r.update_s[mid] - sum(r.steps[mid].values())
        print(
            f"Where an update's time goes ({db}, median round, seconds per step, each ending at its audit event): "
            f"{parts}; the CLI's start-up and the rest {rest:.1f}."
        )
    print()
    plural = "s" if rounds > 1 else ""
    print(
        f"Update rows: median of {rounds} round{plural}, each on a fresh box (3 translations, 1 artifact), the "
        "baseline and both operations interleaved; site-Python test releases (no frozen start-up)."
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--install-rounds", type=int, default=1)
    parser.add_argument("--postgres", choices=("auto", "yes", "no"), default="auto")
    parser.add_argument("--skip-install", action="store_true", help="only the update and rollback rows")
    args = parser.parse_args()
    use_pg = args.postgres == "yes" or (args.postgres == "auto" and _reachable(5432))
    with tempfile.TemporaryDirectory(prefix="sigforge-bench-lifecycle-") as name:
        tmp = Path(name)
        with contextlib.redirect_stdout(sys.stderr):
            inst = None if args.skip_install else bench_install(args.install_rounds, tmp / "install")
            say("update: building the test releases")
            kit = build_kit(tmp / "kit")
            runs = {"SQLite": bench_updates(kit, args.rounds, tmp, _no_database, "sqlite")}
            if use_pg:
                runs["PostgreSQL"] = bench_updates(kit, args.rounds, tmp, _postgres_database, "postgres")
    report(inst, runs, args.rounds)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    raise SystemExit(main())
