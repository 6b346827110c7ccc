"""Toolchain integrity and import on the real zig toolchain tree, each against a same-run baseline.

Usage::

    .venv/bin/python bench/bench_toolchains.py [--rounds 3] [--workers 2]

The tree is the zig bundle built from the installed ``ziglang`` package by ``installer/dev_setup.zig_bundle`` (cached
in ``.cache/dev-toolchain``; the first run pays the build's warm-up), imported into a scratch registry. Three
measurements, interleaved with their baselines round by round, tree warm in the page cache:

1. full verification (``integrity.full_check``, ``--workers`` threads) vs ``sha256sum`` over the same files;
2. the fast path (``integrity.fast_check``, unchanged tree) vs a C loop doing one ``lstat`` per file (the floor);
3. ``ToolchainRegistry.import_bundle`` end to end vs ``tar -I zstd -xf`` unpacking the same bundle.

Prints markdown. No assertion on time: the goals are stated next to the numbers.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import structlog

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "installer"))

import dev_setup  # noqa: E402

from sigforge.bundles import peek_manifest  # noqa: E402
from sigforge.db import migrate  # noqa: E402
from sigforge.db.session import Database  # noqa: E402
from sigforge.services.context import Actor  # noqa: E402
from sigforge.services.toolchains import ToolchainRegistry  # noqa: E402
from sigforge.settings import load_settings  # noqa: E402
from sigforge.toolchains.integrity import fast_check, full_check, settle, verify_and_stamp  # noqa: E402
from sigforge.toolchains.runner import ProcessRunner  # noqa: E402

CACHE = REPO / ".cache" / "dev-toolchain"
LSTAT_C = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
/* argv[1]: a file of NUL-separated paths; lstat each one ROUNDS times; print the best ns per round. */
int main(int argc, char **argv) {
    FILE *f = fopen(argv[1], "rb"); long rounds = atol(argv[2]);
    fseek(f, 0, SEEK_END); long n = ftell(f); fseek(f, 0, SEEK_SET);
    char *buf = malloc(n); if (fread(buf, 1, n, f) != (size_t)n) return 2;
    long best = -1; struct stat st;
    for (long r = 0; r < rounds; r++) {
        struct timespec a, b; clock_gettime(CLOCK_MONOTONIC, &a);
        for (char *p = buf; p < buf + n; p += strlen(p) + 1) if (lstat(p, &st) != 0) return 3;
        clock_gettime(CLOCK_MONOTONIC, &b);
        long ns = (b.tv_sec - a.tv_sec) * 1000000000L + (b.tv_nsec - a.tv_nsec);
        if (best < 0 || ns < best) best = ns;
    }
    printf("%ld\n", best); return 0;
}
"""


def _registry(data: Path) -> ToolchainRegistry:
    settings = load_settings(env={"SIGFORGE_DATA_DIR": str(data)})
    with dev_setup.locked(CACHE):
        keys = dev_setup.dev_keys(CACHE)
    dev_setup.install_dev_trust(settings.trust_path, keys)
    db = Database.from_url(f"sqlite:///{data / 'sigforge.sqlite3'}")
    migrate.upgrade(db)
    return ToolchainRegistry(db, settings, ProcessRunner())


def _sha256sum(list_file: Path) -> None:
    subprocess.run(["sh", "-c", f'xargs -0 sha256sum < "{list_file}" > /dev/null'], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    # The registry logs each import; stdout is the markdown that run_all.py records.
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(sys.stderr))
    bundle = dev_setup.zig_bundle(CACHE, ("linux-arm64",))
    bundle_mb = bundle.stat().st_size / 1e6
    with tempfile.TemporaryDirectory(prefix="bench-toolchains-", dir=REPO / ".cache") as tmp:
        work = Path(tmp)
        # -- 3. import vs tar, interleaved (the first import also gives the tree for 1 and 2) --------------------
        imports: list[float] = []
        tars: list[float] = []
        tree = None
        for r in range(args.rounds):
            data = work / f"data-{r}"
            registry = _registry(data)
            started = time.perf_counter()
            view = registry.import_bundle(bundle, Actor("bench"))
            imports.append(time.perf_counter() - started)
            registry.db.dispose()
            if tree is None:
                tree = Path(view.install_dir)
            else:
                shutil.rmtree(data)
            out = work / f"tar-{r}"
            out.mkdir()
            started = time.perf_counter()
            subprocess.run(["tar", "-I", "zstd", "-xf", str(bundle), "-C", str(out)], check=True)
            tars.append(time.perf_counter() - started)
            shutil.rmtree(out)
        assert tree is not None
        manifest = peek_manifest(bundle, load_settings(env={"SIGFORGE_DATA_DIR": str(work)}).bundles)
        files = manifest.files
        n, total = len(files), sum(f.size for f in files)
        list_file = work / "files.list"
        list_file.write_bytes(b"".join(str(tree / f.path).encode() + b"\0" for f in files))

        # -- 1. full_check vs sha256sum -------------------------------------------------------------------------
        full_check(tree, files, workers=args.workers)  # warm the page cache
        _sha256sum(list_file)
        fulls: list[float] = []
        sums: list[float] = []
        for _ in range(args.rounds):
            started = time.perf_counter()
            problems = full_check(tree, files, workers=args.workers)
            fulls.append(time.perf_counter() - started)
            assert not problems, problems[:3]
            started = time.perf_counter()
            _sha256sum(list_file)
            sums.append(time.perf_counter() - started)

        # -- 2. fast_check vs one lstat per file in C -----------------------------------------------------------
        stamps = work / "stamps.msgpack"
        settle()
        assert not verify_and_stamp(tree, files, stamps, "bench", workers=args.workers)
        settle()
        exe = work / "lstat_loop"
        (work / "lstat_loop.c").write_text(LSTAT_C)
        subprocess.run(["cc", "-O2", "-o", str(exe), str(work / "lstat_loop.c")], check=True)
        fasts: list[float] = []
        floors: list[float] = []
        entries = n + len({p.rpartition("/")[0] for p in (f.path for f in files)})  # files + their directories
        for _ in range(max(args.rounds, 5)):
            started = time.perf_counter()
            ok = fast_check(tree, stamps, "bench")
            fasts.append(time.perf_counter() - started)
            assert ok, "the fast path did not hold on an unchanged tree"
            floor_ns = int(subprocess.run([str(exe), str(list_file), "1"], check=True, capture_output=True,
                                          text=True).stdout)  # fmt: skip
            floors.append(floor_ns / 1e9)

    per10k = 1e4 / n * 1e3
    full_ratio = statistics.median(s / f for s, f in zip(sums, fulls, strict=True))
    import_ratio = statistics.median(i / t for i, t in zip(imports, tars, strict=True))
    print(f"zig toolchain tree (ziglang {manifest.version}, linux-arm64 cache): {n:,} files, {total / 1e6:,.0f} MB, "
          f"{entries - n:,} directories; bundle {bundle_mb:,.0f} MB (zstd); {args.workers} hashing threads; "
          f"median of {args.rounds} interleaved rounds, page cache warm.\n")  # fmt: skip
    print("| measurement | sigforge | same-run baseline | ratio | goal |")
    print("|---|---|---|---|---|")
    fm, sm = statistics.median(fulls), statistics.median(sums)
    print(
        f"| full verification (`full_check`) | {fm:.2f} s ({total / 1e6 / fm:,.0f} MB/s) | `sha256sum` over the "
        f"same files: {sm:.2f} s ({total / 1e6 / sm:,.0f} MB/s) | **{full_ratio:.2f}x** faster | ≥ 1.5x |"
    )
    qm, lm = statistics.median(fasts), statistics.median(floors)
    print(
        f"| fast path (`fast_check`, unchanged tree) | {qm * per10k:.1f} ms per 10k files ({qm * 1e3:.0f} ms) | "
        f"C loop, one `lstat` per file: {lm * per10k:.1f} ms per 10k files ({lm / n * 1e6:.1f} µs each) | "
        f"{qm / lm:.2f}x the floor | ≤ 50 ms per 10k files |"
    )
    im, tm = statistics.median(imports), statistics.median(tars)
    print(
        f"| import (`import_bundle`: copy, verify, extract, re-hash, version probes) | {im:.2f} s "
        f"({total / 1e6 / im:,.0f} MB/s unpacked) | `tar -I zstd -xf`: {tm:.2f} s ({total / 1e6 / tm:,.0f} MB/s) | "
        f"**{import_ratio:.2f}x** the time of tar | none |"
    )
    print(f'\n<!-- {{"files": {n}, "bytes": {total}, "rounds": {args.rounds}, "workers": {args.workers}}} -->')


if __name__ == "__main__":
    main()
