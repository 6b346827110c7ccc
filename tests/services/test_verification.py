"""End to end: translate, build with the real gcc in the sandbox, run the harness, compare with SciPy."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp.pipeline import ArtifactPlan, TranslationRequest, translate
from sigforge.dsp.verify import compare
from sigforge.errors import ToolchainError
from sigforge.services.verification import build_and_verify, manifest, write_files
from sigforge.settings import LimitSettings
from sigforge.toolchains.host import HostCompiler
from sigforge.toolchains.runner import ProcessRunner
from support import example_options

pytestmark = pytest.mark.slow
LIMITS = LimitSettings(build_timeout_s=60, run_timeout_s=20)

CHANNELIZE = """
import numpy as np
from scipy import signal

TAPS = signal.firwin(63, 0.1)

def channelize(x):
    return 0.5 * signal.lfilter(TAPS, 1.0, x)[::4]
"""

DESIGNS = {
    "channelize": (CHANNELIZE, 256, lambda x: 0.5 * signal.lfilter(signal.firwin(63, 0.1), 1.0, x)[::4]),
    "plain_fir": (
        "from scipy.signal import lfilter\ndef f(x):\n    return lfilter([0.1, -0.4, 0.9, 0.3], 1.0, x)\n",
        100,
        lambda x: signal.lfilter([0.1, -0.4, 0.9, 0.3], 1.0, x),
    ),
    "two_stage": (
        "import scipy.signal as s\nA = s.firwin(31, 0.2)\nB = s.firwin(15, 0.3, window='hann')\n"
        "def f(x):\n    y = s.lfilter(A, 1, x)[::2]\n    y = s.lfilter(B, 1.0, y)\n    return y[::3] / 3\n",
        96,
        lambda x: signal.lfilter(signal.firwin(15, 0.3, window="hann"), 1.0,
                                 signal.lfilter(signal.firwin(31, 0.2), 1.0, x)[::2])[::3] / 3,
    ),
    "gain_and_decimate_only": (
        "def f(x):\n    return -2.5 * x[::5]\n", 50, lambda x: -2.5 * x[::5],
    ),
    "long_taps_more_than_frame": (
        "from scipy import signal\nT = signal.firwin(255, 0.05)\n"
        "def f(x):\n    return signal.lfilter(T, 1.0, x)[::8]\n",
        64,
        lambda x: signal.lfilter(signal.firwin(255, 0.05), 1.0, x)[::8],
    ),
}  # fmt: skip


def fresh_input(n: int, seed: int = 99) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, n).astype(np.float32).astype(np.float64)


@pytest.mark.parametrize("design", sorted(DESIGNS))
def test_build_and_verify_designs(design: str, tmp_path: Path, runner: ProcessRunner, cc: HostCompiler) -> None:
    src, n, reference = DESIGNS[design]
    plan = translate(src, TranslationRequest(frame_length=n))
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path / "w", cc=cc)
    assert outcome.verified, outcome.summary
    assert outcome.max_abs_error < 1e-5
    report = json.loads(outcome.files["report.json"])
    assert report == json.loads(json.dumps(outcome.report))
    assert report["schema"] == "sigforge.report/2" and report["verified"]
    assert report["toolchain"]["cc"] == cc.path and report["toolchain"]["version"] == cc.version
    assert report["thresholds"]["dtype"] == "float32" and len(report["vectors"]) >= 9
    assert all(v["frames"] >= 3 and v["boundary_ok"] for v in report["vectors"])
    assert all(v["frames"] * n >= 2048 for v in report["vectors"])
    assert {"build_s", "run_s", "golden_s", "total_s"} <= set(report["timings"])
    (out,) = report["outputs"]
    assert out["file"] == "OUT.bin" and out["passed"] and len(out["vectors"]) == len(report["vectors"])
    assert report["failures"] == [] and isinstance(report["traceability"], list)
    plots = {p["file"] for p in report["plots"]}
    assert plots == {"plots/signal.svg", "plots/magnitude_response.svg", "plots/error_spectrum.svg"}
    assert set(outcome.files) == set(plan.files) | {"report.json", "report.html", "MANIFEST.sha256"} | plots
    assert not any(name.startswith("build") for name in outcome.files)
    others = {k: v for k, v in outcome.files.items() if k != "MANIFEST.sha256"}
    assert outcome.files["MANIFEST.sha256"] == manifest(others)
    lines = outcome.files["MANIFEST.sha256"].decode().splitlines()
    assert [ln.split("  ")[1] for ln in lines] == sorted(others)
    assert all(hashlib.sha256(others[p]).hexdigest() == h for h, p in (ln.split("  ") for ln in lines))
    # The golden model in the plan is SciPy's answer.
    x = fresh_input(3 * n)
    np.testing.assert_allclose(plan.golden(x)[0], reference(x), rtol=1e-9, atol=1e-12)


def test_artifact_builds_standalone_with_plain_make(tmp_path: Path, runner: ProcessRunner, cc: HostCompiler) -> None:
    plan = translate(CHANNELIZE, TranslationRequest(frame_length=128))
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path / "w", cc=cc)
    copy = tmp_path / "elsewhere"
    write_files(outcome.files, copy)
    subprocess.run(["make"], cwd=copy, check=True, capture_output=True, timeout=60)
    x = fresh_input(128 * 7, seed=7)
    (copy / "in.bin").write_bytes(x.astype("<f4").tobytes())
    subprocess.run(["build/harness", "in.bin", "out.bin"], cwd=copy, check=True, timeout=20)
    y = np.fromfile(copy / "out.bin", dtype="<f4").astype(np.float64)
    expected = 0.5 * signal.lfilter(signal.firwin(63, 0.1), 1.0, x)[::4]
    assert y.shape == expected.shape
    assert np.max(np.abs(y - expected)) <= 1e-4 * np.sqrt(np.mean(expected**2))
    # A partial frame is refused with a non-zero exit.
    (copy / "bad.bin").write_bytes(x[:130].astype("<f4").tobytes())
    bad = subprocess.run(["build/harness", "bad.bin", "o.bin"], cwd=copy, capture_output=True, timeout=20)
    assert bad.returncode == 3 and b"partial frame" in bad.stderr
    assert subprocess.run(["build/harness"], cwd=copy, capture_output=True).returncode == 2


def _corrupt(plan: ArtifactPlan, old: str, new: str) -> ArtifactPlan:
    files = dict(plan.files)
    source = files[f"{plan.name}.c"].decode()
    assert old in source
    files[f"{plan.name}.c"] = source.replace(old, new).encode()
    return ArtifactPlan(plan.name, plan.target, files, plan.interface, plan.golden, plan.tolerances, plan.graph,
                        plan.passes)  # fmt: skip


@pytest.mark.parametrize(
    ("old", "new", "boundary"),
    [
        ("const float h = n2_taps[i];", "const float h = 1.01f * n2_taps[i];", False),  # scales the output
        ("memmove(s->n2_buf", "(void)(s->n2_buf); if (0) memmove(s->n2_buf", True),  # forgets the delay line
    ],
    ids=["scaled", "stateless"],
)
def test_corrupted_c_is_not_verified(
    old: str, new: str, boundary: bool, tmp_path: Path, runner: ProcessRunner, cc: HostCompiler
) -> None:
    plan = _corrupt(translate(CHANNELIZE, TranslationRequest(frame_length=64)), old, new)
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert not outcome.verified and outcome.summary.startswith("NOT verified")
    assert not outcome.report["verified"]
    if boundary:
        assert not all(v["boundary_ok"] for v in outcome.report["vectors"])


def test_build_failure_is_a_toolchain_error_with_stderr(tmp_path: Path, runner: ProcessRunner, cc) -> None:
    plan = _corrupt(translate(CHANNELIZE, TranslationRequest(frame_length=64)), "const float h", "const flot h")
    with pytest.raises(ToolchainError) as info:
        build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert "flot" in info.value.detail["stderr"]


# ---- property test: compiled C against scipy.signal.lfilter directly -------------------------------------
_BUILT: dict[str, Path] = {}


def _harness(plan: ArtifactPlan, root: Path, runner: ProcessRunner, cc: HostCompiler) -> Path:
    """Build once per distinct artifact content (hypothesis shrinking repeats designs)."""
    key = hashlib.sha256(b"".join(k.encode() + v for k, v in sorted(plan.files.items()))).hexdigest()[:16]
    if key not in _BUILT:
        work = root / key
        write_files(plan.files, work)
        res = runner.run(["make", f"CC={cc.path}"], cwd=work, timeout_s=60, memory_mb=2048, max_file_mb=64)
        assert res.returncode == 0, res.stderr.decode()
        _BUILT[key] = work / "build" / "harness"
    return _BUILT[key]


design_strategy = st.one_of(
    # Engineering taps: zero or between 1e-4 and 1 in magnitude. A tap like 1e-50 underflows float32 and makes
    # verification fail, rightly: that is a finding about the design, not a property of the translator.
    st.lists(st.one_of(st.just(0.0), st.floats(1e-4, 1.0), st.floats(-1.0, -1e-4)), min_size=1, max_size=48).map(
        lambda t: ("list", t)
    ),
    st.tuples(st.integers(3, 121), st.floats(0.05, 0.9)).map(lambda a: ("firwin", a)),
)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(design=design_strategy, factor=st.integers(1, 6), per_frame=st.integers(1, 40),
       gain=st.sampled_from([1.0, 0.5, -3.0]), frames=st.integers(3, 5))  # fmt: skip
def test_compiled_c_matches_scipy(design, factor, per_frame, gain, frames, tmp_path_factory, runner, cc) -> None:
    kind, args = design
    if kind == "list":
        taps = np.asarray(args, dtype=np.float64)
        expr = repr([float(t) for t in args])
    else:
        numtaps, cutoff = args
        taps = signal.firwin(numtaps, cutoff)
        expr = f"signal.firwin({numtaps}, {cutoff!r})"
    body = f"return {gain!r} * signal.lfilter(TAPS, 1.0, x)[::{factor}]"
    src = f"from scipy import signal\nTAPS = {expr}\ndef f(x):\n    {body}\n"
    n = factor * per_frame
    plan = translate(src, TranslationRequest(frame_length=n))
    exe = _harness(plan, tmp_path_factory.getbasetemp() / "prop", runner, cc)
    x = fresh_input(n * frames, seed=n)
    work = exe.parent
    (work / "in.bin").write_bytes(x.astype("<f4").tobytes())
    res = runner.run([str(exe), "in.bin", "out.bin"], cwd=work, timeout_s=20, memory_mb=512, max_file_mb=64)
    assert res.returncode == 0, res.stderr
    y = np.fromfile(work / "out.bin", dtype="<f4").astype(np.float64)
    expected = gain * signal.lfilter(taps, 1.0, x)[::factor]
    metrics = compare(y, expected, plan.tolerances, output_frame=per_frame)
    assert metrics.passed, (metrics, src, n)


EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_verify(path: Path, tmp_path: Path, runner: ProcessRunner, cc: HostCompiler) -> None:
    dtype = example_options(path).get("input_dtype", "float32")
    plan = translate(path.read_text(), TranslationRequest(frame_length=480, input_dtype=dtype))
    assert plan.interface["inputs"][0]["dtype"] == dtype
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary


def test_plan_file_names_must_stay_inside_workdir(tmp_path: Path) -> None:
    from sigforge.errors import IntegrityError

    for bad in ("../escape.c", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(IntegrityError):
            write_files({bad: b"x"}, tmp_path / "w")
    write_files({"sub/ok.c": b"x"}, tmp_path / "w")
    assert (tmp_path / "w" / "sub" / "ok.c").read_bytes() == b"x"


# ---- report.html and plots of a real artifact ------------------------------------------------------------------
def test_report_html_and_plots_in_the_artifact(tmp_path: Path, runner: ProcessRunner, cc: HostCompiler) -> None:
    import xml.etree.ElementTree as ET
    from html.parser import HTMLParser

    plan = translate(CHANNELIZE, TranslationRequest(frame_length=256, sample_rate=48000.0))
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary
    listed = {ln.split("  ")[1] for ln in outcome.files["MANIFEST.sha256"].decode().splitlines()}
    assert {"report.html", "plots/signal.svg", "plots/magnitude_response.svg", "plots/error_spectrum.svg"} <= listed
    for plot in outcome.report["plots"]:
        svg = outcome.files[plot["file"]].decode()
        ET.fromstring(svg)
        assert "style=" not in svg and "<style" not in svg and "<script" not in svg
        assert "http" not in svg.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "frequency (Hz)" in outcome.files["plots/magnitude_response.svg"].decode()  # sample_rate known
    html = outcome.files["report.html"].decode()
    tags: list[str] = []

    class Tags(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            tags.append(tag)

    Tags().feed(html)
    assert "script" not in tags and tags.count("svg") == 3 and "table" in tags
    assert "http://" not in html and "https://" not in html
    assert "VERIFIED" in html and cc.version in html and "0.0001" in html


# ---- a hand-written two-output float64 artifact ----------------------------------------------------------------
TWO_H = """#ifndef TWO_H
#define TWO_H
#define TWO_FRAME_IN 64
#define TWO_FRAME_OUT0 64
#define TWO_FRAME_OUT1 32
typedef struct two_state { double x1, x2; } two_state;
void two_init(two_state *s);
void two_process(two_state *s, const double *in, double *out0, double *out1);
#endif
"""
TWO_C = """#include "two.h"
/* init [src:3] */
void two_init(two_state *s) { s->x1 = 0.0; s->x2 = 0.0; }
/* process [src:5] */
void two_process(two_state *s, const double *in, double *out0, double *out1)
{
    int n, k;
    /* smoothing FIR [src:6] */
    for (n = 0; n < TWO_FRAME_IN; n++) {
        out0[n] = 0.5 * in[n] + 0.25 * s->x1 + 0.125 * s->x2;
        s->x2 = s->x1;
        s->x1 = in[n];
    }
    /* gain and decimate [src:7] */
    for (k = 0; k < TWO_FRAME_OUT1; k++) {
        out1[k] = 2.0 * in[2 * k];
    }
}
"""
TWO_HARNESS = r"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "two.h"
int main(int argc, char **argv)
{
    double x[TWO_FRAME_IN], y0[TWO_FRAME_OUT0], y1[TWO_FRAME_OUT1];
    char name1[4096];
    size_t len;
    two_state s;
    FILE *fi, *f0, *f1;
    if (argc != 3) return 2;
    len = strlen(argv[2]);
    if (len < 4 || len > 4000 || strcmp(argv[2] + len - 4, ".bin") != 0) return 2;
    memcpy(name1, argv[2], len - 4);
    strcpy(name1 + len - 4, ".1.bin");
    fi = fopen(argv[1], "rb"); f0 = fopen(argv[2], "wb"); f1 = WRITE_OUT1;
    if (!fi || !f0 || !f1) return 2;
    two_init(&s);
    while (fread(x, sizeof(double), TWO_FRAME_IN, fi) == TWO_FRAME_IN) {
        two_process(&s, x, y0, y1);
        fwrite(y0, sizeof(double), TWO_FRAME_OUT0, f0);
        fwrite(y1, sizeof(double), TWO_FRAME_OUT1, f1);
    }
    fclose(fi); fclose(f0); fclose(f1);
    return 0;
}
"""
TWO_MAKEFILE = (
    "CC ?= cc\nall: build/harness\nbuild/harness: harness.c two.c two.h\n"
    "\tmkdir -p build\n\t$(CC) -O2 -std=c99 -ffp-contract=off -o $@ harness.c two.c\n"
)


def two_output_plan(*, c_source: str = TWO_C, out1: str = 'fopen(name1, "wb")') -> ArtifactPlan:
    from sigforge.dsp.ir import Graph
    from sigforge.dsp.verify import tolerances_for

    interface = {
        "name": "two", "frame_length": 64, "sample_rate": 8000.0,
        "inputs": [{"name": "x", "dtype": "float64", "samples_per_frame": 64}],
        "outputs": [
            {"name": "smooth", "dtype": "float64", "samples_per_frame": 64, "rate_factor": "1"},
            {"name": "decimated", "dtype": "float64", "samples_per_frame": 32, "rate_factor": "1/2"},
        ],
        "build": {"command": "make", "cflags": "-O2 -std=c99 -ffp-contract=off"},
    }  # fmt: skip
    files = {
        "two.h": TWO_H.encode(),
        "two.c": c_source.encode(),
        "harness.c": TWO_HARNESS.replace("WRITE_OUT1", out1).encode(),
        "Makefile": TWO_MAKEFILE.encode(),
        "interface.json": json.dumps(interface).encode(),
    }
    return ArtifactPlan(
        name="two", target="host-c", files=files, interface=interface,
        golden=lambda x: [signal.lfilter([0.5, 0.25, 0.125], 1.0, x), 2.0 * x[::2]],
        tolerances=tolerances_for("float64"), graph=Graph("two", ()), passes=[],
    )  # fmt: skip


def test_two_output_float64_plan_verifies(tmp_path: Path, runner: ProcessRunner, cc: HostCompiler) -> None:
    outcome = build_and_verify(two_output_plan(), runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary
    assert "over 2 outputs" in outcome.summary and outcome.max_abs_error < 1e-12
    report = outcome.report
    assert [o["file"] for o in report["outputs"]] == ["OUT.bin", "OUT.1.bin"]
    assert [o["dtype"] for o in report["outputs"]] == ["float64", "float64"]
    assert all(o["thresholds"]["max_rel_error"] == 1e-9 for o in report["outputs"])
    assert all(len(o["vectors"]) == len(report["vectors"]) and o["passed"] for o in report["outputs"])
    assert report["vector_set"]["dtype"] == "float64" and report["vector_set"]["samples"] == 2048
    assert report["traceability"] == [
        {"source_line": 3, "generated": [{"file": "two.c", "line": 2}]},
        {"source_line": 5, "generated": [{"file": "two.c", "line": 4}]},
        {"source_line": 6, "generated": [{"file": "two.c", "line": 8}]},
        {"source_line": 7, "generated": [{"file": "two.c", "line": 14}]},
    ]
    assert "two.c:8" in outcome.files["report.html"].decode()


@pytest.mark.parametrize(
    ("c_source", "out1", "evidence"),
    [
        # 1e-6 relative: inside float32 tolerance, far outside float64's.
        (TWO_C.replace("2.0 * in[2 * k]", "2.000002 * in[2 * k]"), 'fopen(name1, "wb")', "exceeds the bound"),
        (TWO_C, 'fopen("/dev/null", "wb")', "harness wrote no OUT.1.bin"),
    ],
    ids=["wrong_value", "missing_file"],
)
def test_breaking_output_1_fails_with_evidence_on_output_1(
    c_source: str, out1: str, evidence: str, tmp_path: Path, runner: ProcessRunner, cc: HostCompiler
) -> None:
    plan = two_output_plan(c_source=c_source, out1=out1)
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert not outcome.verified and "first failure: output 1 (decimated)" in outcome.summary
    report = outcome.report
    out0, out1_report = report["outputs"]
    assert out0["passed"] and not out1_report["passed"]
    assert report["failures"] and all(f["output"] == 1 for f in report["failures"])
    assert evidence in report["failures"][0]["problem"]
    assert all(v["output"] == 1 and not v["passed"] for v in report["vectors"])
    json.loads(outcome.files["report.json"])  # still valid JSON (no infinities)
    assert "Evidence of failure" in outcome.files["report.html"].decode()
