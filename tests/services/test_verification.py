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
from sigforge.toolchains.host import HostCompiler, find_host_cc
from sigforge.toolchains.runner import ProcessRunner

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


@pytest.fixture(scope="module")
def cc() -> HostCompiler:
    return find_host_cc()


@pytest.fixture(scope="module")
def runner() -> ProcessRunner:
    return ProcessRunner()


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
    assert report["schema"] == "sigforge.report/1" and report["verified"]
    assert report["toolchain"]["cc"] == cc.path and report["toolchain"]["version"] == cc.version
    assert report["thresholds"]["dtype"] == "float32" and len(report["vectors"]) >= 4
    assert all(v["frames"] >= 3 and v["boundary_ok"] for v in report["vectors"])
    assert {"build_s", "run_s", "total_s"} <= set(report["timings"])
    assert set(outcome.files) == set(plan.files) | {"report.json", "MANIFEST.sha256"}
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
    plan = translate(path.read_text(), TranslationRequest(frame_length=480))
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary


def test_plan_file_names_must_stay_inside_workdir(tmp_path: Path) -> None:
    from sigforge.errors import IntegrityError

    for bad in ("../escape.c", "/etc/passwd", "a/../../b", ""):
        with pytest.raises(IntegrityError):
            write_files({bad: b"x"}, tmp_path / "w")
    write_files({"sub/ok.c": b"x"}, tmp_path / "w")
    assert (tmp_path / "w" / "sub" / "ok.c").read_bytes() == b"x"
