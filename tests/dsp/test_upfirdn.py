"""``scipy.signal.upfirdn`` as a stream: golden model, frame-by-frame equality, compiled C against SciPy, refusals.

Streaming semantics (``blocks.upfirdn``): the output is ``upfirdn(h, x, up, down)[: len(x) * up // down]``, the
whole-signal output without the filter tail. C tolerances (max abs error / reference RMS) as in
``test_compiled_fir``: float32 1e-4 (the verification bound; each output sums at most ceil(L / up) float32
products), float64 1e-10.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from cbuild import rel_error, run_c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp import golden
from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.pipeline import TranslationRequest, translate
from sigforge.dsp.types import DType
from sigforge.errors import InvalidAlgorithm, InvalidInput

TOL = {"float32": 1e-4, "float64": 1e-10, "complex64": 1e-4, "complex128": 1e-10}
H = "import numpy as np\nfrom scipy import signal\n"  # two lines: user code starts at line 3


def _src(h: np.ndarray, call: str) -> str:
    return f"{H}T = np.array({h.tolist()!r})\ndef f(x):\n    return {call}\n"


def _want(h: np.ndarray, x: np.ndarray, up: int, down: int) -> np.ndarray:
    """SciPy on the signal followed by one zero: identical to plain ``upfirdn(h, x, up, down)`` where that is long
    enough, and defined (zeros of the stuffed slots) where fewer taps than ``up`` make SciPy stop short."""
    return signal.upfirdn(h, np.concatenate([x, np.zeros(1, dtype=x.dtype)]), up, down)[: x.size * up // down]


@settings(max_examples=12, deadline=None)
@given(taps=st.integers(1, 40), up=st.integers(1, 7), down=st.integers(1, 7), chunk=st.integers(1, 23),
       complex_=st.booleans(), seed=st.integers(0, 2**16))  # fmt: skip
def test_golden_frame_by_frame_equals_whole_signal_and_scipy(taps, up, down, chunk, complex_, seed) -> None:
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(taps)
    dtype = DType.COMPLEX128 if complex_ else DType.FLOAT64
    g = parse_python(_src(h, f"signal.upfirdn(T, x, up={up}, down={down})"), frame_length=down,
                     input_dtype=dtype)  # fmt: skip
    x = rng.standard_normal(97) + (1j * rng.standard_normal(97) if complex_ else 0)
    whole = golden.evaluate(g, x)[0]
    model = golden.StreamingModel(g)
    parts = np.concatenate([model.process(x[i : i + chunk])[0] for i in range(0, x.size, chunk)])
    want = _want(h, x, up, down)
    assert whole.shape == parts.shape == want.shape
    np.testing.assert_allclose(whole, want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(parts, want, rtol=0, atol=1e-12)


def test_positional_keyword_and_default_forms_agree() -> None:
    h = np.array([0.5, 1.0, 0.25])
    calls = [
        "signal.upfirdn(T, x, 3, 2)",
        "signal.upfirdn(T, x, up=3, down=2)",
        "signal.upfirdn(h=T, x=x, down=2, up=3)",
    ]
    graphs = [parse_python(_src(h, c), frame_length=4, input_dtype=DType.FLOAT32) for c in calls]
    assert len({g.nodes[1].params for g in graphs}) == 1
    plain = parse_python(_src(h, "signal.upfirdn(T, x)"), frame_length=4, input_dtype=DType.FLOAT32)
    assert (plain.nodes[1].params.up, plain.nodes[1].params.down, plain.outputs[0].out.samples) == (1, 1, 4)
    up_only = parse_python(_src(h, "signal.upfirdn(T, x, 3)"), frame_length=4, input_dtype=DType.FLOAT32)
    assert (up_only.outputs[0].out.samples, str(up_only.outputs[0].out.rate)) == (12, "3")


def test_generated_c_is_polyphase_without_zero_products() -> None:
    h = np.arange(1.0, 8.0)  # 7 taps, up 3: branches of 3, 2, 2 taps (no padding)
    plan = translate(_src(h, "signal.upfirdn(T, x, 3, 2)"), TranslationRequest(frame_length=10))
    code = plan.files["f.c"].decode()
    assert "static const int n1_count[3] = {\n    3, 2, 2\n};" in code
    assert "static const float n1_h[7] = {" in code  # 7 products per 3 outputs' worth of phases, never 21
    assert "float n1_buf[13]; /* 3 past input samples + one frame */" in plan.files["f.h"].decode()
    assert "[src:5]" in code
    assert plan.interface["outputs"][0]["samples_per_frame"] == 15
    assert plan.interface["outputs"][0]["rate_factor"] == "3/2"


# (call, frame length, line, column, message fragment)
BAD = [
    ("signal.upfirdn(T, x, x, 2)", 4, 5, 11, "up must fold to a constant integer"),
    ("signal.upfirdn(T, x, 3, 2.0)", 4, 5, 11, "down must fold to a constant integer"),
    ("signal.upfirdn(T, x, 65, 1)", 4, 5, 11, "up must be 1..64, got 65"),
    ("signal.upfirdn(T, x, 1, 0)", 4, 5, 11, "down must be 1..64, got 0"),
    ("signal.upfirdn(T, x, True, 1)", 4, 5, 11, "up must fold to a constant integer"),
    ("signal.upfirdn(x, x, 3, 2)", 4, 5, 11, "constant taps h"),
    ("signal.upfirdn(T, T, 3, 2)", 4, 5, 11, "constant taps h and a signal x"),
    ("signal.upfirdn(T, x, 3, 2, axis=0)", 4, 5, 11, "axis="),
    ("signal.upfirdn(T, x, 3, 2, mode='edge')", 4, 5, 11, "keywords are not supported"),
    ("signal.upfirdn(np.zeros(9000), x, 3, 2)", 4, 5, 26, "1..8192"),  # refused by np.zeros itself
    ("signal.upfirdn([], x, 3, 2)", 4, 5, 11, "1..8192"),
    ("signal.upfirdn([1j, 1.0], x, 3, 2)", 4, 5, 11, "real numbers"),
    ("signal.upfirdn(T, x)", 4, None, None, None),
]


@pytest.mark.parametrize(("call", "frame", "line", "col", "fragment"), BAD)
def test_refusals_name_the_call(call, frame, line, col, fragment) -> None:
    src = _src(np.array([1.0, 0.5]), call)
    if fragment is None:
        parse_python(src, frame_length=frame, input_dtype=DType.FLOAT32)
        return
    with pytest.raises(InvalidAlgorithm) as info:
        parse_python(src, frame_length=frame, input_dtype=DType.FLOAT32)
    assert fragment in str(info.value)
    assert (info.value.location.line, info.value.location.column) == (line, col)


def test_frame_lengths_that_do_not_make_whole_outputs_vary() -> None:
    src = _src(np.array([1.0, 0.5]), "signal.upfirdn(T, x[::2], 3, 4)")
    out = parse_python(src, frame_length=6, input_dtype=DType.FLOAT32).outputs[0].out  # 3 * 3 % 4 != 0
    assert (out.samples, out.variable, out.frame_multiple) == (3, True, 8)
    assert not parse_python(src, frame_length=8, input_dtype=DType.FLOAT32).outputs[0].out.variable
    with pytest.raises(InvalidInput) as info:  # a frame operation needs whole frames: the multiple is named
        parse_python(src.replace("return signal.upfirdn(T, x[::2], 3, 4)", "return np.fft.fft(signal.upfirdn(T, "
                                 "x[::2], 3, 4))"), frame_length=6, input_dtype=DType.FLOAT32)  # fmt: skip
    assert info.value.pointer == "/frame_length"
    assert "multiple of 8" in str(info.value)
    assert info.value.location is not None and info.value.location.line == 5


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(taps=st.integers(1, 120), up=st.integers(1, 8), down=st.integers(1, 8), mult=st.integers(1, 12),
       dtype=st.sampled_from(["float32", "float64", "complex64", "complex128"]), frames=st.integers(3, 4),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_compiled_upfirdn_matches_scipy(
    taps, up, down, mult, dtype, frames, seed, tmp_path_factory, runner, cc
) -> None:
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(taps)
    frame = mult * down // math.gcd(up, down)  # frame * up divisible by down
    plan = translate(_src(h, f"signal.upfirdn(T, x, {up}, {down})"),
                     TranslationRequest(frame_length=frame, input_dtype=dtype))  # fmt: skip
    x = rng.uniform(-1, 1, frame * frames)
    if dtype.startswith("complex"):
        x = x + 1j * rng.uniform(-1, 1, x.size)
    x = x.astype(dtype).astype(np.complex128 if dtype.startswith("complex") else np.float64)
    y = run_c(plan, x, tmp_path_factory.getbasetemp() / "upfirdn", runner, cc)
    assert rel_error(y, _want(h, x, up, down)) <= TOL[dtype], (taps, up, down, frame, dtype)


@pytest.mark.slow
@pytest.mark.parametrize(("taps", "up", "down"), [(1, 3, 2), (2, 5, 3), (1, 2, 1)])
def test_fewer_taps_than_up_still_give_every_output(taps: int, up: int, down: int, tmp_path, runner, cc) -> None:
    """Found by the property test: with len(h) < up SciPy's whole-signal output ends before the last input's
    zero-stuffed slots; the stream still owes those outputs, and they are exactly what SciPy gives for the signal
    followed by a zero."""
    h = np.linspace(1.0, 0.5, taps)
    frame = down * 4
    x = np.random.default_rng(taps + up).uniform(-1, 1, frame * 3)
    want = _want(h, x, up, down)
    assert want.size == x.size * up // down
    plan = translate(
        _src(h, f"signal.upfirdn(T, x, {up}, {down})"), TranslationRequest(frame_length=frame, input_dtype="float64")
    )
    assert np.allclose(plan.golden(x)[0], want, rtol=0, atol=1e-15)
    got = run_c(plan, x, tmp_path, runner, cc)
    assert got.shape == want.shape
    assert rel_error(got, want) <= 1e-10
