"""Throughput of generated host C against SciPy on the same signal, measured in the same run (a ratio).

Usage::

    .venv/bin/python bench/bench_translator.py [--samples 8388608] [--rounds 5]

Translates ``examples/fir_decimate.py`` (63-tap FIR, decimate by 4) for host-c with frame 4096, builds the artifact
with its own Makefile, then times ``build/harness in.bin out.bin`` (file I/O included, so the C side is charged
more than SciPy) against ``0.5 * scipy.signal.lfilter(taps, 1.0, x)[::4]`` on float32 data already in memory.
Rounds are interleaved; the median of per-round ratios is reported. Prints a markdown row.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy import signal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sigforge.dsp import pipeline  # noqa: E402
from sigforge.services.verification import write_files  # noqa: E402

FRAME = 4096


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=1 << 23)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    samples = args.samples // FRAME * FRAME
    source = (REPO / "examples" / "fir_decimate.py").read_text()
    plan = pipeline.translate(source, pipeline.TranslationRequest(frame_length=FRAME))
    taps = signal.firwin(63, 0.1)
    x = np.random.default_rng(1).standard_normal(samples).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_files(plan.files, work)
        subprocess.run(["make", "-s"], cwd=work, check=True)
        (work / "in.bin").write_bytes(x.tobytes())
        ratios, c_rates, py_rates = [], [], []
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            subprocess.run([work / "build" / "harness", work / "in.bin", work / "out.bin"], check=True)
            c_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            want = 0.5 * signal.lfilter(taps, 1.0, x)[::4]
            py_s = time.perf_counter() - t0
            ratios.append(py_s / c_s)
            c_rates.append(samples / c_s / 1e6)
            py_rates.append(samples / py_s / 1e6)
        got = np.frombuffer((work / "out.bin").read_bytes(), dtype=np.float32)
        assert np.allclose(got, want, atol=1e-4), "the benchmarked harness must also be right"
    print("| workload | sigforge host-c (Msamples/s) | scipy lfilter+slice (Msamples/s) | ratio (median) |")
    print("|---|---|---|---|")
    print(
        f"| 63-tap FIR, decimate 4, float32, {samples:,} samples | {statistics.median(c_rates):.0f} | "
        f"{statistics.median(py_rates):.0f} | **{statistics.median(ratios):.2f}x** |"
    )


if __name__ == "__main__":
    main()
