"""Generated host C against NumPy/SciPy doing the same work, measured in the same run (ratios), plus translation time.

Usage::

    .venv/bin/python bench/bench_translator.py [--samples 4194304] [--rounds 5] [--cold-output]

For each workload the algorithm is translated for host-c (frame 4096) and its C is linked with a small driver
(``bench/c/driver.c.in``) that calls ``<name>_process`` frame after frame over an in-memory signal on one core and
reports the time with ``clock_gettime``. The driver writes its output buffer once before timing, as a streaming
caller reuses its frame buffers; ``--cold-output`` times those first-touch page faults too (the earlier method).
SciPy runs the same computation on the same float32 data (its time includes allocating its output, which its API
cannot avoid). Rounds are interleaved and the median of per-round ratios is reported. The C output is checked
against SciPy first, so a fast wrong answer cannot be recorded. A workload the translator does not support yet is
listed as such.

Then the time to translate and verify a 6-block chain (parse → IR → passes → C → gcc → run all test vectors →
compare) is measured end to end through ``services.jobs.verify_source``, as a worker does it.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from sigforge.db.session import Database  # noqa: E402
from sigforge.dsp import pipeline  # noqa: E402
from sigforge.errors import DomainError  # noqa: E402
from sigforge.logging import configure_logging  # noqa: E402
from sigforge.services.context import Actor  # noqa: E402
from sigforge.services.jobs import BuildEnvironment, verify_source  # noqa: E402
from sigforge.services.verification import write_files  # noqa: E402
from sigforge.settings import load_settings  # noqa: E402

FRAME = 4096
DRIVER = (REPO / "bench" / "c" / "driver.c.in").read_text()
FIR64 = signal.firwin(64, 0.2)
FIR_D8 = signal.firwin(64, 1 / 8)
SOS6 = signal.butter(6, 0.2, output="sos")


@dataclass(frozen=True)
class Workload:
    name: str
    source: str
    reference: Callable[[np.ndarray], np.ndarray]


WORKLOADS = [
    Workload(
        "64-tap FIR",
        "from scipy import signal\nTAPS = signal.firwin(64, 0.2)\n"
        "def fir(x):\n    return signal.lfilter(TAPS, 1.0, x)\n",
        lambda x: signal.lfilter(FIR64.astype(np.float32), np.float32(1.0), x),
    ),
    Workload(
        "64-tap FIR + decimate by 8",
        "from scipy import signal\nTAPS = signal.firwin(64, 1 / 8)\n"
        "def dec8(x):\n    return signal.lfilter(TAPS, 1.0, x)[::8]\n",
        lambda x: signal.lfilter(FIR_D8.astype(np.float32), np.float32(1.0), x)[::8],
    ),
    Workload(
        "6th-order SOS IIR (butter)",
        "from scipy import signal\nSOS = signal.butter(6, 0.2, output='sos')\n"
        "def iir(x):\n    return signal.sosfilt(SOS, x)\n",
        lambda x: signal.sosfilt(SOS6.astype(np.float32), x),
    ),
]

CHAIN6 = """\
from scipy import signal

STAGE1 = signal.firwin(31, 0.2)
STAGE2 = signal.firwin(47, 0.3)

def chain(x):
    y = signal.lfilter(STAGE1, 1.0, x)
    y = y[::2]
    y = 2.0 * y
    y = signal.lfilter(STAGE2, 1.0, y)
    y = y[::2]
    return 0.25 * y
"""


def build_driver(plan: pipeline.ArtifactPlan, work: Path) -> Path:
    write_files(plan.files, work)
    interface = plan.interface
    ctype = {"float32": "float", "float64": "double"}[interface["inputs"][0]["dtype"]]
    driver = (
        DRIVER.replace("@NAME@", interface["name"])
        .replace("@CTYPE@", ctype)
        .replace("@FRAME_IN@", str(interface["inputs"][0]["samples_per_frame"]))
        .replace("@FRAME_OUT@", str(interface["outputs"][0]["samples_per_frame"]))
    )
    (work / "driver.c").write_text(driver)
    sources = [str(p) for p in work.glob("*.c") if p.name != "harness.c"]
    exe = work / "driver"
    cflags = interface["build"]["cflags"].split()
    subprocess.run(["cc", *cflags, "-o", str(exe), *sources, "-lm"], check=True, cwd=work)
    return exe


def run_driver(exe: Path, x: np.ndarray, work: Path, cold: bool = False) -> tuple[float, np.ndarray]:
    (work / "in.bin").write_bytes(x.tobytes())
    args = [str(exe), str(work / "in.bin"), str(work / "out.bin"), *(["cold"] if cold else [])]
    out = subprocess.run(args, check=True, capture_output=True, text=True)
    seconds = float(out.stdout.strip())
    return seconds, np.frombuffer((work / "out.bin").read_bytes(), dtype=x.dtype)


def bench_workload(w: Workload, x: np.ndarray, rounds: int, cold: bool) -> str:
    try:
        plan = pipeline.translate(w.source, pipeline.TranslationRequest(frame_length=FRAME))
    except DomainError as exc:
        return f"| {w.name} | not supported yet: {exc.message} | | |"
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        exe = build_driver(plan, work)
        _, got = run_driver(exe, x, work)
        want = w.reference(x)
        scale = float(np.sqrt(np.mean(want.astype(np.float64) ** 2))) or 1.0
        err = float(np.max(np.abs(got.astype(np.float64) - want))) / scale
        assert err < 1e-3, f"{w.name}: generated C disagrees with SciPy (max error {err:.3g} x RMS)"
        ratios, c_rates, py_rates = [], [], []
        for _ in range(rounds):
            c_s, _ = run_driver(exe, x, work, cold)
            t0 = time.perf_counter()
            w.reference(x)
            py_s = time.perf_counter() - t0
            ratios.append(py_s / c_s)
            c_rates.append(x.size / c_s / 1e6)
            py_rates.append(x.size / py_s / 1e6)
    return (
        f"| {w.name} | {statistics.median(c_rates):.0f} | {statistics.median(py_rates):.0f} | "
        f"**{statistics.median(ratios):.2f}x** |"
    )


def bench_translation(rounds: int) -> str:
    """As a worker does it: the toolchain comes from the registry (imported once, outside the timing; each timed
    translation includes the registry's stamp check of the tree)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "installer"))
    import dev_setup

    configure_logging("warning", "console")
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={"SIGFORGE_DATA_DIR": tmp})
        with contextlib.redirect_stdout(sys.stderr):  # the import's log lines are not part of the table
            dev_setup.ensure(settings)
        db = Database.from_url(settings.database_url)
        env = BuildEnvironment.from_settings(settings, db)
        request = pipeline.TranslationRequest(frame_length=1024)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            outcome = verify_source(CHAIN6, request, env, scratch=Path(tmp), actor=Actor("bench"))
            times.append(time.perf_counter() - t0)
            assert outcome.verified, outcome.summary
        vectors = len(outcome.report.get("vectors", []))
        db.dispose()
    return (
        f"| 6-block chain (FIR, ↓2, gain, FIR, ↓2, gain), frame 1024: parse → verified ({vectors} vectors) | "
        f"{statistics.median(times):.2f} s median of {rounds} (goal ≤ 2 s) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--samples", type=int, default=1 << 22)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cold-output", action="store_true", help="time the C output buffer's page faults too")
    args = parser.parse_args()
    x = np.random.default_rng(1).standard_normal(args.samples // FRAME * FRAME).astype(np.float32)
    output = "cold (page faults timed)" if args.cold_output else "pre-faulted"
    print(f"float32, {x.size:,} samples, frame {FRAME}, one core, C output buffer {output}; "
          "ratio = SciPy time / generated C time.\n")  # fmt: skip
    print("| workload | sigforge host-c (Msamples/s) | SciPy (Msamples/s) | ratio (median) |")
    print("|---|---|---|---|")
    for w in WORKLOADS:
        print(bench_workload(w, x, args.rounds, args.cold_output), flush=True)
    print("\n| translation | time |\n|---|---|")
    print(bench_translation(3))
    print(f"\n<!-- {json.dumps({'samples': int(x.size), 'rounds': args.rounds, 'cold_output': args.cold_output})} -->")


if __name__ == "__main__":
    main()
