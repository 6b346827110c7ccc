"""Frame lengths that are not a multiple of the decimation: variable-length streams, compiled C against SciPy.

With ``x[::M]``, ``lfilter(b, 1, x)[::M]`` (polyphase FIR) or ``upfirdn(h, x, up, down)`` on frames of N samples
where M (or down) does not divide N (times up), each frame produces a varying number of samples (N=1000, M=3:
334, 333, 333, 334, ...). The phase is state in the C struct, ``process`` returns the count and the harness writes
exactly the produced samples, so the concatenated output must equal SciPy on the whole signal. Frame operations
after such a stream are refused with the frame lengths that work. C tolerances (max abs error / reference RMS) as
in ``test_compiled_fir``: float32 1e-4, float64 1e-10.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from fractions import Fraction

import numpy as np
import pytest
from cbuild import rel_error, run_c, run_c_all
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp import golden
from sigforge.dsp.blocks import RuleError, decimate, frame_ops
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.frame_ops import FrameParams
from sigforge.dsp.ir import frame_starts
from sigforge.dsp.pipeline import TranslationRequest, check, translate
from sigforge.dsp.types import DType, StreamType, cumulative
from sigforge.errors import InvalidInput
from sigforge.services.verification import build_and_verify
from sigforge.settings import LimitSettings, load_settings
from support import REPO_ROOT, child_env, provision_toolchain

LIMITS = LimitSettings(build_timeout_s=60, run_timeout_s=20)

TOL = {"float32": 1e-4, "float64": 1e-10, "complex64": 1e-4, "complex128": 1e-10}
H = "import numpy as np\nfrom scipy import signal\n"  # two lines: user code starts at line 3
TAPS = signal.firwin(37, 0.2)


def _src(body: str) -> str:
    return f"{H}T = np.array({TAPS.tolist()!r})\ndef f(x):\n{body}"


def _signal(n: int, dtype: str, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, n)
    if dtype.startswith("complex"):
        x = x + 1j * rng.uniform(-1, 1, n)
    return x.astype(dtype).astype(np.complex128 if dtype.startswith("complex") else np.float64)


def _upfirdn(h: np.ndarray, x: np.ndarray, up: int, down: int) -> np.ndarray:
    """SciPy's upfirdn truncated to the streamed length (one zero appended: see ``blocks.upfirdn``)."""
    return signal.upfirdn(h, np.concatenate([x, np.zeros(1, dtype=x.dtype)]), up, down)[: x.size * up // down]


# --- IR rules ----------------------------------------------------------------------------------------------------
def test_decimation_of_a_frame_it_does_not_divide_gives_a_variable_stream() -> None:
    src = StreamType(DType.FLOAT32, 1000, Fraction(1))
    out = decimate.infer(DecimateParams(3), [src])
    assert (out.samples, out.rate, out.variable) == (334, Fraction(1, 3), True)
    assert [cumulative(out.counts, f * 1000) for f in range(1, 5)] == [334, 667, 1000, 1334]
    assert frame_starts(out, 1000, 4) == [334, 667, 1000]
    assert out.frame_multiple == 3
    fixed = decimate.infer(DecimateParams(4), [src])
    assert (fixed.samples, fixed.variable) == (250, False)
    # x[::2][::3] and x[::6] count alike (normalised count functions)
    two = decimate.infer(DecimateParams(2), [StreamType(DType.FLOAT32, 7, Fraction(1))])
    assert decimate.infer(DecimateParams(3), [two]) == decimate.infer(
        DecimateParams(6), [StreamType(DType.FLOAT32, 7, Fraction(1))]
    )


def test_frame_operations_refuse_variable_streams() -> None:
    var = decimate.infer(DecimateParams(3), [StreamType(DType.FLOAT32, 10, Fraction(1))])
    with pytest.raises(RuleError, match=r"fixed length.*multiple of 3"):
        frame_ops.infer(FrameParams("fft", var.samples), [var])


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ("    return np.fft.fft(x[::3])\n", "np.fft.fft"),
        ("    return np.fft.rfft(signal.lfilter(T, 1.0, x)[::3])\n", "np.fft.rfft"),
        ("    y = x[::3]\n    return np.sum(y)\n", "np.sum"),
        ("    return x[::3] * np.hanning(334)\n", "np.hanning"),
        ("    return np.fft.fftshift(signal.upfirdn(T, x, 2, 3))\n", "fftshift"),
    ],
)
def test_frame_ops_after_a_variable_stream_are_refused_with_the_working_frame_lengths(body: str, what: str) -> None:
    with pytest.raises(InvalidInput) as info:
        translate(_src(body), TranslationRequest(frame_length=1000))
    err = info.value
    assert err.pointer == "/frame_length"
    assert err.location is not None and err.location.line >= 5
    assert what in err.message and "multiple of 3" in err.message and "fixed length" in err.message


def test_combining_streams_with_different_count_patterns_is_refused() -> None:
    # both at rate 1/2, but x[::2] has ceil(I/2) samples after I inputs and upfirdn floor(I/2)
    with pytest.raises(InvalidInput, match="different rates or frame sizes"):
        check(_src("    return x[::2] + signal.upfirdn(T, x, 1, 2)\n"), TranslationRequest(frame_length=7))
    # with a frame length both divide, the same expression is fine
    check(_src("    return x[::2] + signal.upfirdn(T, x, 1, 2)\n"), TranslationRequest(frame_length=8))


def test_interface_and_header_state_the_variable_count() -> None:
    plan = translate(_src("    return signal.lfilter(T, 1.0, x)[::3]\n"), TranslationRequest(frame_length=1000))
    iface = json.loads(plan.files["interface.json"])
    (out,) = iface["outputs"]
    assert (out["samples_per_frame"], out["samples_per_frame_varies"], out["rate_factor"]) == (334, True, "1/3")
    assert iface["frame_multiple"] == 3
    header = plan.files["f.h"].decode()
    assert "#define F_FRAME_OUT 334 /* most samples per frame of output 0; the count varies" in header
    assert "size_t f_process(f_state *s, const float *restrict in, float *restrict out);" in header
    assert "size_t f_out_count(const f_state *s, int i);" in header
    fixed = json.loads(translate(_src("    return x[::4]\n"), TranslationRequest(frame_length=1000)).files[
        "interface.json"])  # fmt: skip
    assert fixed["outputs"][0]["samples_per_frame_varies"] is False


# --- compiled C against SciPy -------------------------------------------------------------------------------------
CASES = [
    ("    return x[::3]\n", lambda x: x[::3]),
    ("    return signal.lfilter(T, 1.0, x)[::3]\n", lambda x: signal.lfilter(TAPS, 1.0, x)[::3]),
    ("    return signal.lfilter(T, 1.0, x)[::2][::3]\n", lambda x: signal.lfilter(TAPS, 1.0, x)[::6]),
    ("    return signal.lfilter(T, 1.0, x[::2])[::3]\n", lambda x: signal.lfilter(TAPS, 1.0, x[::2])[::3]),
    ("    return signal.upfirdn(T, x, 2, 3)\n", lambda x: _upfirdn(TAPS, x, 2, 3)),
    ("    return signal.upfirdn(T, x[::2], 3, 5)\n", lambda x: _upfirdn(TAPS, x[::2], 3, 5)),
    ("    return signal.upfirdn(T, x, 1, 4)[::3] * 2.0\n", lambda x: _upfirdn(TAPS, x, 1, 4)[::3] * 2.0),
    ("    b, a = signal.butter(4, 0.1)\n    return signal.lfilter(b, a, x[::5])\n",
     lambda x: signal.lfilter(*signal.butter(4, 0.1), x[::5])),
    ("    return np.angle(x[::3][1:] * np.conj(x[::3][:-1]))\n", None),
]  # fmt: skip


@pytest.mark.parametrize("n", [1, 2, 7, 13, 1000])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_compiled_c_equals_scipy_for_any_frame_length(case: int, n: int, tmp_path, runner, cc) -> None:
    body, want = CASES[case]
    dtype = "complex64" if want is None else "float32"
    plan = translate(_src(body), TranslationRequest(frame_length=n, input_dtype=dtype))
    frames = max(3, -(-600 // n))
    x = _signal(n * frames, dtype)
    got = run_c(plan, x, tmp_path, runner, cc)
    if want is None:  # the FM discriminator on a decimated stream: output 0 is angle(x0 * conj(0)) = 0
        d = x[::3]
        expected = np.concatenate([[0.0], np.angle(d[1:] * np.conj(d[:-1]))])
    else:
        expected = want(x)
    assert got.size == expected.size
    assert rel_error(got, expected) <= TOL[dtype]
    np.testing.assert_allclose(plan.golden(x)[0], expected, rtol=1e-9, atol=1e-9)


def test_chained_decimation_with_frame_7_produces_the_documented_counts(tmp_path, runner, cc) -> None:
    request = TranslationRequest(frame_length=7, input_dtype="float64")
    plan = translate(_src("    y = x[::2]\n    return y[::3], y\n"), request)
    x = _signal(7 * 12, "float64")
    y6, y2 = run_c_all(plan, x, tmp_path, runner, cc)
    np.testing.assert_array_equal(y6, x[::6])
    np.testing.assert_array_equal(y2, x[::2])
    # counts per frame: frame f gives cumulative(f + 1) - cumulative(f)
    out = plan.graph.outputs[0].out
    counts = np.diff([0, *frame_starts(out, 7, 13)])
    assert counts.tolist() == [2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1, 1]
    assert out.samples == 2


@pytest.mark.parametrize("n", [11, 12])
@pytest.mark.parametrize("dtype", ["complex64", "complex128", "float64"])
def test_complex_and_double_streams_with_variable_frames(dtype: str, n: int, tmp_path, runner, cc) -> None:
    """n=12: every stream fixed but the upfirdn (a complex polyphase FIR with constant counts, too)."""
    body = "    y = signal.lfilter(T, 1.0, x)[::3]\n    return y, signal.upfirdn(T, x, 3, 4), x[::5] * (1 + 1j)\n"
    if not dtype.startswith("complex"):
        body = body.replace(" * (1 + 1j)", " * 0.5")
    plan = translate(_src(body), TranslationRequest(frame_length=n, input_dtype=dtype))
    x = _signal(n * 40, dtype)
    got = run_c_all(plan, x, tmp_path, runner, cc)
    scale = (1 + 1j) if dtype.startswith("complex") else 0.5
    expected = [signal.lfilter(TAPS, 1.0, x)[::3], _upfirdn(TAPS, x, 3, 4), x[::5] * scale]
    for g, e in zip(got, expected, strict=True):
        assert rel_error(g, e) <= TOL[dtype]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 40), m=st.integers(2, 9), taps=st.integers(1, 30), up=st.integers(1, 5),
       down=st.integers(1, 7), complex_=st.booleans(), seed=st.integers(0, 2**16))  # fmt: skip
def test_hypothesis_decimation_and_resampling_any_frame_length(
    n, m, taps, up, down, complex_, seed, tmp_path_factory, runner, cc
) -> None:
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(taps)
    dtype = "complex128" if complex_ else "float64"
    src = (f"{H}T = np.array({h.tolist()!r})\ndef f(x):\n"
           f"    return signal.lfilter(T, 1.0, x)[::{m}], signal.upfirdn(T, x, {up}, {down})\n")  # fmt: skip
    plan = translate(src, TranslationRequest(frame_length=n, input_dtype=dtype))
    x = _signal(n * max(3, -(-200 // n)), dtype, seed)
    fir_out, up_out = run_c_all(plan, x, tmp_path_factory.mktemp("c"), runner, cc)
    assert rel_error(fir_out, signal.lfilter(h, 1.0, x)[::m]) <= TOL[dtype]
    assert rel_error(up_out, _upfirdn(h, x, up, down)) <= TOL[dtype]
    # the golden streaming model, frame by frame, agrees with the whole-signal one
    model = golden.StreamingModel(plan.graph)
    parts = [model.process(x[i : i + n]) for i in range(0, x.size, n)]
    for k, whole in enumerate(golden.evaluate(plan.graph, x)):
        np.testing.assert_allclose(np.concatenate([p[k] for p in parts]), whole, rtol=1e-12, atol=1e-12)


# --- end to end: the CLI and the verification service ---------------------------------------------------------------
@pytest.mark.slow
def test_cli_translates_a_decimating_example_with_frame_1000(tmp_path) -> None:
    """examples/two_stage_decimator.py decimates by 12; 1000 is not a multiple: 84 or 83 samples per frame."""
    out = tmp_path / "out"
    provision_toolchain(load_settings(env={"SIGFORGE_DATA_DIR": str(tmp_path / "d")}))
    result = subprocess.run(
        [sys.executable, "-m", "sigforge", "translate", str(REPO_ROOT / "examples" / "two_stage_decimator.py"),
         "--frame", "1000", "--out", str(out)],
        env=child_env(SIGFORGE_DATA_DIR=str(tmp_path / "d")), capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.startswith("VERIFIED")
    iface = json.loads((out / "interface.json").read_text())
    assert iface["frame_length"] == 1000 and iface["frame_multiple"] == 12
    assert iface["outputs"][0] | {"file": None} == {"name": "y", "dtype": "float32", "samples_per_frame": 84,
                                                     "samples_per_frame_varies": True, "rate_factor": "1/12",
                                                     "file": None}  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    assert report["verified"] and report["variable_frames"]["samples_per_frame_vary"] is True
    assert report["variable_frames"]["variant"] is None  # the requested length already varies
    assert "size_t ddc_process(" in (out / "ddc.h").read_text()


def _plan_with_broken_variant(plan):  # type: ignore[no-untyped-def]
    """``plan`` whose variant's C forgets to carry the decimation phase (always starts at 0)."""
    v = plan.variant
    files = dict(v.files)
    source = files[f"{v.name}.c"].decode()
    assert "s->n2_phase = p_n2 +" in source
    files[f"{v.name}.c"] = source.replace("s->n2_phase = p_n2 +", "s->n2_phase = 0 * p_n2 +").encode()
    return dataclasses.replace(plan, variant=dataclasses.replace(v, files=files))


def test_verification_also_runs_a_frame_length_the_decimation_does_not_divide(tmp_path, runner, cc) -> None:
    plan = translate(_src("    return signal.lfilter(T, 1.0, x)[::4]\n"), TranslationRequest(frame_length=64))
    assert plan.variant is not None
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path / "ok", cc=cc)
    assert outcome.verified, outcome.summary
    section = outcome.report["variable_frames"]
    assert section["frame_length"] == 64 and section["frame_multiple"] == 4
    assert section["samples_per_frame_vary"] is False
    variant = section["variant"]
    assert variant["frame_length"] == 65 and variant["verified"]
    assert len(variant["vectors"]) == len(outcome.report["vectors"]) and all(r["passed"] for r in variant["vectors"])
    assert variant["outputs"][0]["samples_per_frame_varies"] is True
    assert "frame length 65" in outcome.summary
    # a variant that loses the phase fails the whole verification, at a frame boundary
    broken = build_and_verify(_plan_with_broken_variant(plan), runner=runner, limits=LIMITS,
                              workdir=tmp_path / "bad", cc=cc)  # fmt: skip
    assert not broken.verified
    assert broken.report["variable_frames"]["variant"]["verified"] is False
    assert not any(r["boundary_ok"] for r in broken.report["variable_frames"]["variant"]["vectors"][:2])


def test_no_variant_for_frame_operations_or_plain_filters() -> None:
    assert translate(_src("    return np.fft.fft(x[::2])\n"), TranslationRequest(frame_length=64)).variant is None
    assert (
        translate(_src("    return signal.lfilter(T, 1.0, x)\n"), TranslationRequest(frame_length=64)).variant is None
    )


def test_decimating_example_with_frame_1000_verifies_in_process(tmp_path, runner, cc) -> None:
    """The CLI test's example through the same pipeline and verification service, without the CLI's settings."""
    source = (REPO_ROOT / "examples" / "two_stage_decimator.py").read_text()
    plan = translate(source, TranslationRequest(frame_length=1000))
    assert plan.variant is None and plan.graph.outputs[0].out.variable
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary
    assert outcome.report["outputs"][0]["samples_per_frame_varies"] is True
    assert all(r["boundary_ok"] for r in outcome.report["vectors"])
