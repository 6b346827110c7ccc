"""4096-point complex float32 FFT: generated C (sigforge.dsp.backends.fft_c) vs numpy.fft and FFTW, same run.

Usage::

    .venv/bin/python bench/bench_fft.py [--n 4096] [--rounds 5] [--reps 20000]

The generated C is linked with ``bench/c/fft_driver.c.in`` (gcc -O3 -march=native), which repeats one transform
REPS times on one core, timed with ``clock_gettime``, and reports the median of its inner rounds. FFTW single
precision (``fftwf``, FFTW_MEASURE, the same timing loop) runs only where ``/usr/include/fftw3.h`` and libfftw3f
exist; otherwise it is skipped with a note. NumPy runs complex64 and complex128, in batches of 256 and one
transform at a time. Rounds are interleaved; every ratio is ``t(method) / t(generated C)`` per round, median over
rounds (> 1: the generated C is faster). The C output is checked against numpy first. Goal (issue 3):
generated C >= 0.5x FFTW single precision, or >= 2x numpy.fft where FFTW is absent.
"""

from __future__ import annotations

import argparse
import ctypes.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sigforge.dsp.backends.fft_c import generate_fft  # noqa: E402

FLAGS = ["-std=c11", "-O3", "-march=native", "-ffp-contract=fast"]  # the host-C backend's default CFLAGS
FFTW_DRIVER = r"""
#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <fftw3.h>
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}
static int cmp(const void *a, const void *b)
{
    double d = *(const double *)a - *(const double *)b;
    return (d > 0) - (d < 0);
}
int main(int argc, char **argv) {
    int n = atoi(argv[1]); long reps = atol(argv[2]), rounds = atol(argv[3]), r, i; double ts[64];
    fftwf_complex *in = fftwf_malloc(sizeof(fftwf_complex) * n), *out = fftwf_malloc(sizeof(fftwf_complex) * n);
    fftwf_plan p = fftwf_plan_dft_1d(n, in, out, FFTW_FORWARD, FFTW_MEASURE);
    FILE *f = fopen(argv[4], "rb");
    (void)argc;
    if (f == NULL || fread(in, sizeof(fftwf_complex), n, f) != (size_t)n) return 2;
    fclose(f);
    for (r = 0; r < rounds; r++) {
        double t0 = now();
        for (i = 0; i < reps; i++) fftwf_execute(p);
        ts[r] = (now() - t0) / reps;
    }
    qsort(ts, rounds, sizeof(double), cmp);
    printf("%.9e\n", ts[rounds / 2]);
    return 0;
}
"""


def build_generated(n: int, work: Path) -> Path:
    code = generate_fft(n, dtype="float32", prefix="sf_fft")
    text = (REPO / "bench" / "c" / "fft_driver.c.in").read_text()
    subs = {"CODE": code.declarations + code.definitions, "PREFIX": "sf_fft", "N": str(n), "CTYPE": code.ctype,
            "IN_LEN": str(code.in_len), "OUT_LEN": str(code.out_len), "WORK_LEN": str(code.work_len)}  # fmt: skip
    for key, value in subs.items():
        text = text.replace(f"@{key}@", value)
    (work / "gen.c").write_text(text)
    subprocess.run(["gcc", *FLAGS, "-o", "gen", "gen.c", "-lm"], cwd=work, check=True)
    print(f"generated: {code.algorithm}, work {code.work_len} floats", file=sys.stderr)
    return work / "gen"


def fftw_available() -> str | None:
    """None if FFTW single precision can be used, else why not."""
    if not Path("/usr/include/fftw3.h").exists():
        return "/usr/include/fftw3.h absent (apt-get install libfftw3-dev)"
    if ctypes.util.find_library("fftw3f") is None:
        return "libfftw3f absent (apt-get install libfftw3-dev)"
    return None


def build_fftw(work: Path) -> Path:
    (work / "fftw.c").write_text(FFTW_DRIVER)
    subprocess.run(["gcc", *FLAGS, "-o", "fftw", "fftw.c", "-lfftw3f", "-lm"], cwd=work, check=True)
    return work / "fftw"


def time_numpy(fn: Callable[[], object], transforms: int, min_s: float = 0.2) -> float:
    """Seconds per transform: median of 5 timings of enough calls to last ``min_s``."""
    fn()
    calls = 1
    while True:
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - t0 >= min_s / 5:
            break
        calls *= 2
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        times.append((time.perf_counter() - t0) / calls / transforms)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--reps", type=int, default=20000)
    args = ap.parse_args()
    n, batch = args.n, 256
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    rng = np.random.default_rng(0)
    x = (rng.standard_normal(n) + 1j * rng.standard_normal(n)).astype(np.complex64)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        x.view(np.float32).tofile(work / "in.bin")
        gen = build_generated(n, work)
        why_no_fftw = fftw_available()
        fftw = build_fftw(work) if why_no_fftw is None else None

        def run_c(exe: Path, argv: list[str]) -> float:
            out = subprocess.run([str(exe), *argv], cwd=work, check=True, capture_output=True, text=True).stdout
            return float(out.split()[0])

        # correctness first: a fast wrong answer is not recorded
        run_c(gen, ["1", "1", "in.bin", "out.bin"])
        y = np.fromfile(work / "out.bin", dtype=np.float32).view(np.complex64).astype(np.complex128)
        ref = np.fft.fft(x.astype(np.complex128))
        err = float(np.max(np.abs(y - ref)) / np.sqrt(np.mean(np.abs(ref) ** 2)))
        assert err < 1e-5, err
        print(f"generated C max error / RMS vs numpy float64: {err:.2e}", file=sys.stderr)

        xb64 = np.tile(x, (batch, 1))
        xb128 = xb64.astype(np.complex128)
        x128 = x.astype(np.complex128)
        methods: dict[str, Callable[[], float]] = {
            "generated C (float32)": lambda: run_c(gen, [str(args.reps), "5", "in.bin", "out.bin"]),
            "numpy.fft c64, batch 256": lambda: time_numpy(lambda: np.fft.fft(xb64, axis=-1), batch),
            "numpy.fft c128, batch 256": lambda: time_numpy(lambda: np.fft.fft(xb128, axis=-1), batch),
            "numpy.fft c64, one at a time": lambda: time_numpy(lambda: np.fft.fft(x), 1),
            "numpy.fft c128, one at a time": lambda: time_numpy(lambda: np.fft.fft(x128), 1),
        }
        if fftw is not None:
            fftw_argv = [str(n), str(args.reps), "5", "in.bin"]
            methods["FFTW fftwf (c64), FFTW_MEASURE"] = lambda: run_c(fftw, fftw_argv)
        results: dict[str, list[float]] = {name: [] for name in methods}
        for _ in range(args.rounds):
            for name, fn in methods.items():
                results[name].append(fn())

    gen_times = results["generated C (float32)"]
    print(
        f"\n**{n}-point complex FFT** (µs per transform, median of {args.rounds} interleaved rounds; "
        "ratio = t(method) / t(generated C), median of per-round ratios; > 1 means the generated C is faster)\n"
    )
    print("| method | µs per FFT | ratio |")
    print("|---|---|---|")
    for name, times in results.items():
        ratio = statistics.median(t / g for t, g in zip(times, gen_times, strict=True))
        print(f"| {name} | {statistics.median(times) * 1e6:.2f} | {ratio:.2f} |")
    if fftw is None:
        print(f"\nFFTW skipped: {why_no_fftw}.")
    print(f"\nnumpy {np.__version__}; C flags: {' '.join(FLAGS)}; one core.")


if __name__ == "__main__":
    main()
