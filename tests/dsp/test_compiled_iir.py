"""Compiled C against SciPy/NumPy themselves (not only our golden model): random IIR designs and the examples.

Tolerances (max abs error relative to the reference output's RMS), derived:
    * float32 I/O: inputs are exact float32 values; the C keeps IIR state and maps in double, so the only
      float32 error is rounding each block's output (2**-24 relative to a sample, <= ~6e-8 * peak/RMS, and peak/RMS
      stays below ~100 for these signals): 1e-4 (the float32 threshold of ``dsp.verify``) leaves >10x margin.
    * float64 I/O: double everywhere; sections add ~eps * (sum |h|) per stage, 1e-12 or better for stable designs
      in SOS form: 1e-10 (``dsp.verify``'s float64 threshold). ``lfilter(b, a)`` designs are drawn only where
      SciPy's own direct form agrees with its SOS form (``tf2sos``) to a tenth of that bound: above order ~4 at low
      cutoffs the direct form itself is off by more (ill-conditioned polynomial), which no implementation fixes.
"""

from __future__ import annotations

import runpy
from pathlib import Path

import numpy as np
import pytest
from cbuild import example_input, example_options, rel_error, run_c
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp.pipeline import TranslationRequest, translate
from sigforge.dsp.verify import tolerances_for

pytestmark = pytest.mark.slow
TOL = {"float32": 1e-4, "float64": 1e-10}
EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))


def _design(kind: str, order: int, cutoff: float, btype: str, output: str) -> tuple[str, object]:
    args = {"butter": "", "cheby1": "1.0, ", "ellip": "0.5, 50.0, "}[kind]
    expr = f"signal.{kind}({order}, {args}{cutoff!r}, btype={btype!r}, output={output!r})"
    value = {"butter": signal.butter, "cheby1": signal.cheby1, "ellip": signal.ellip}[kind]
    extra = {"butter": (), "cheby1": (1.0,), "ellip": (0.5, 50.0)}[kind]
    return expr, value(order, *extra, cutoff, btype=btype, output=output)  # type: ignore[operator]


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.filter_too_much],
)
@given(kind=st.sampled_from(["butter", "cheby1", "ellip"]), order=st.integers(1, 8),
       cutoff=st.floats(0.05, 0.9).map(lambda v: round(v, 4)), btype=st.sampled_from(["low", "high"]),
       output=st.sampled_from(["ba", "sos"]), dtype=st.sampled_from(["float32", "float64"]),
       per_frame=st.integers(1, 97), frames=st.integers(3, 5), seed=st.integers(0, 2**16))  # fmt: skip
def test_compiled_iir_matches_scipy(
    kind, order, cutoff, btype, output, dtype, per_frame, frames, seed, tmp_path_factory, runner, cc
) -> None:
    expr, design = _design(kind, order, cutoff, btype, output)
    x = np.random.default_rng(seed).uniform(-1, 1, per_frame * frames).astype(dtype).astype(np.float64)
    if output == "ba":
        b, a = design  # type: ignore[misc]
        expected = signal.lfilter(b, a, x)
        assume(rel_error(signal.sosfilt(signal.tf2sos(b, a), x), expected) < TOL[dtype] / 10)
        src = f"from scipy import signal\nb, a = {expr}\ndef f(x):\n    return signal.lfilter(b, a, x)\n"
    else:
        expected = signal.sosfilt(design, x)
        src = f"from scipy import signal\nS = {expr}\ndef f(x):\n    return signal.sosfilt(S, x)\n"
    plan = translate(src, TranslationRequest(frame_length=per_frame, input_dtype=dtype))
    y = run_c(plan, x, tmp_path_factory.getbasetemp() / "iir", runner, cc)
    assert rel_error(y, expected) <= TOL[dtype], (src, dtype, per_frame)


def _example_cases() -> list[tuple[Path, str]]:
    """Each example in both precisions, except those that state float64 (a dB spectrum down to -120 dB is
    ill-conditioned in float32: verification rightly fails there)."""
    cases = []
    for path in EXAMPLES:
        opts = example_options(path)
        for dtype in ("float32", "float64"):
            if opts.get("precision") == "float64" and dtype == "float32":
                continue
            if opts.get("input_dtype", "float32").startswith("complex"):  # same precision, complex
                dtype = {"float32": "complex64", "float64": "complex128"}[dtype]
            cases.append((path, dtype))
    return cases


@pytest.mark.parametrize(("path", "dtype"), _example_cases(), ids=lambda v: v.stem if isinstance(v, Path) else v)
def test_examples_compile_and_match_their_python(path: Path, dtype: str, tmp_path: Path, runner, cc) -> None:
    opts = example_options(path)
    frame = int(opts.get("frame_length", "240"))
    plan = translate(path.read_text(), TranslationRequest(frame_length=frame, input_dtype=dtype))
    func = runpy.run_path(str(path))[plan.graph.name]  # our own example file: running it here is fine
    rng = np.random.default_rng(3)
    n = frame * 4
    tone = np.sin(2 * np.pi * 0.01 * np.arange(n)) + 0.3  # DC + low tone: exercises blockers and envelopes
    for raw in (rng.uniform(-1, 1, n), rng.normal(0, 0.5, n), tone):
        x, ref = example_input(path, raw, dtype)
        y = run_c(plan, x, tmp_path, runner, cc)
        if opts.get("reference") == "per_frame":  # frame operations: the function on each frame alone
            want = np.concatenate([np.atleast_1d(func(ref[i : i + frame])) for i in range(0, n, frame)])
        elif opts.get("reference") == "prefix":  # upfirdn: the stream is the whole-signal output without its tail
            want = np.asarray(func(ref))[: y.size]
        else:
            want = np.asarray(func(ref))
        tol = TOL[dtype.replace("complex64", "float32").replace("complex128", "float64")]
        if opts.get("precision") == "float64":
            tol = tolerances_for(dtype).max_rel_error  # the verification bound (1e-9), not this file's 1e-10
        assert rel_error(y, want) <= tol, path.stem


def test_elementwise_chain_compiles_and_matches_numpy(tmp_path: Path, runner, cc) -> None:
    src = ("import numpy as np\nfrom scipy import signal\nb, a = signal.butter(2, 0.1)\ndef f(x):\n"
           "    e = signal.lfilter(b, a, np.abs(x))\n"
           "    return np.clip(np.sqrt(e) * 2 - 0.1, -1, 1) + np.sign(x) * np.minimum(np.exp(x), 2.0)"
           " + 0.1 * np.log10(e + 1) - np.maximum(x, 0.2)\n")  # fmt: skip
    for dtype in ("float32", "float64"):
        plan = translate(src, TranslationRequest(frame_length=50, input_dtype=dtype))
        x = np.random.default_rng(8).standard_normal(200).astype(dtype).astype(np.float64)
        e = signal.lfilter(*signal.butter(2, 0.1), np.abs(x))
        expected = (np.clip(np.sqrt(e) * 2 - 0.1, -1, 1) + np.sign(x) * np.minimum(np.exp(x), 2.0)
                    + 0.1 * np.log10(e + 1) - np.maximum(x, 0.2))  # fmt: skip
        assert rel_error(run_c(plan, x, tmp_path, runner, cc), expected) <= TOL[dtype]
