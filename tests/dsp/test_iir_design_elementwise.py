"""IIR filters, design-time calls, elementwise maps and float64: accepted, checked against SciPy/NumPy directly."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest
from scipy import signal

from sigforge.dsp.blocks import iir
from sigforge.dsp.frontends._stmts import read_module
from sigforge.dsp.frontends.python_subset import _fold_constant, parse_python
from sigforge.dsp.golden import StreamingModel, evaluate
from sigforge.dsp.ir import Op
from sigforge.dsp.passes import run_passes
from sigforge.dsp.pipeline import TranslationRequest, translate
from sigforge.dsp.types import DType

HEAD = "import numpy as np\nfrom scipy import signal\n"
X = np.random.default_rng(11).standard_normal(600)


def golden_of(body: str, n: int = 60, dtype: DType = DType.FLOAT32) -> tuple[Any, np.ndarray]:
    graph = parse_python(HEAD + body, frame_length=n, input_dtype=dtype)
    return graph, evaluate(graph, X)[0]


def frames_equal_whole(graph: Any, x: np.ndarray, n: int) -> None:
    model = StreamingModel(graph)
    pieces = [model.process(x[i : i + n])[0] for i in range(0, x.size, n)]
    np.testing.assert_allclose(np.concatenate(pieces), evaluate(graph, x)[0], rtol=1e-12, atol=1e-13)


# ---- IIR -------------------------------------------------------------------------------------------------------
IIR_CASES = {
    "dc_blocker": ("def f(x):\n    return signal.lfilter([1, -1], [1, -0.995], x)\n",
                   lambda x: signal.lfilter([1, -1], [1, -0.995], x)),
    "unnormalised_a": ("def f(x):\n    return signal.lfilter([2.0, 1.0], [4.0, -2.0], x)\n",
                       lambda x: signal.lfilter([2.0, 1.0], [4.0, -2.0], x)),
    "butter4_ba": ("b, a = signal.butter(4, 0.2)\ndef f(x):\n    return signal.lfilter(b, a, x)\n",
                   lambda x: signal.lfilter(*signal.butter(4, 0.2), x)),
    "ellip_sos_band": (
        "S = signal.ellip(4, 1, 50, [0.1, 0.3], btype='bandpass', output='sos')\n"
        "def f(x):\n    return signal.sosfilt(S, x)\n",
        lambda x: signal.sosfilt(signal.ellip(4, 1, 50, [0.1, 0.3], btype="bandpass", output="sos"), x)),
    "cheby2_fs": ("S = signal.cheby2(5, 40, 3000, fs=48000, btype='high', output='sos')\n"
                  "def f(x):\n    return 0.5 * signal.sosfilt(S, x)\n",
                  lambda x: 0.5 * signal.sosfilt(signal.cheby2(5, 40, 3000, fs=48000, btype="high", output="sos"), x)),
    "bessel_then_decimate": ("b, a = signal.bessel(3, 0.1)\ndef f(x):\n    return signal.lfilter(b, a, x)[::3]\n",
                             lambda x: signal.lfilter(*signal.bessel(3, 0.1), x)[::3]),
    "notch_peak": ("b, a = signal.iirnotch(0.2, 10)\nc, d = signal.iirpeak(0.4, 5.0)\n"
                   "def f(x):\n    return signal.lfilter(c, d, signal.lfilter(b, a, x))\n",
                   lambda x: signal.lfilter(*signal.iirpeak(0.4, 5.0), signal.lfilter(*signal.iirnotch(0.2, 10), x))),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(IIR_CASES))
def test_iir_matches_scipy_and_streams(case: str) -> None:
    body, reference = IIR_CASES[case]
    graph, y = golden_of(body)
    np.testing.assert_allclose(y, reference(X), rtol=1e-12, atol=1e-12)
    frames_equal_whole(graph, X, 60)
    frames_equal_whole(graph, X[:594], 33)  # frame lengths that do not divide the signal's structure
    optimised, _ = run_passes(graph)
    np.testing.assert_allclose(evaluate(optimised, X)[0], y, rtol=1e-12, atol=1e-12)


def test_ba_sections_follow_the_order_rule() -> None:
    low = iir.from_ba([1.0, 0.5], [2.0, -1.0])
    assert low.sections == ((0.5, 0.25, 0.0, 1.0, -0.5, 0.0),) and low.a == (1.0, -0.5)
    b, a = signal.butter(6, 0.3)
    high = iir.from_ba(b, a)
    np.testing.assert_allclose(np.array(high.sections), signal.tf2sos(b, a))
    assert high.order == 6 and len(high.sections) == 3
    with pytest.raises(ValueError, match="a\\[0\\]"):
        iir.from_ba([1.0], [0.0, 1.0])


# ---- design-time calls ---------------------------------------------------------------------------------------
def fold(expr: str) -> Any:
    scope, _ = read_module(HEAD + f"V = {expr}\ndef f(x):\n    return x\n", None, _fold_constant)
    return scope["V"]


DESIGNS = [
    ("signal.firwin(31, 0.2, window='blackman')", signal.firwin(31, 0.2, window="blackman")),
    ("signal.firwin(31, [0.2, 0.4], pass_zero=False)", signal.firwin(31, [0.2, 0.4], pass_zero=False)),
    ("signal.firwin2(41, [0, 0.3, 0.5, 1], [1, 1, 0, 0])", signal.firwin2(41, [0, 0.3, 0.5, 1], [1, 1, 0, 0])),
    ("signal.remez(33, [0, 0.1, 0.2, 0.5], [1, 0])", signal.remez(33, [0, 0.1, 0.2, 0.5], [1, 0])),
    ("signal.kaiserord(60, 0.05)", signal.kaiserord(60, 0.05)),
    ("signal.kaiser_beta(50)", signal.kaiser_beta(50)),
    ("signal.butter(4, 0.3, 'high')", signal.butter(4, 0.3, "high")),
    ("signal.cheby1(3, 1, [0.2, 0.5], btype='bandstop', output='sos')",
     signal.cheby1(3, 1, [0.2, 0.5], btype="bandstop", output="sos")),
    ("signal.ellip(5, 0.5, 60, 1000, fs=8000)", signal.ellip(5, 0.5, 60, 1000, fs=8000)),
    ("signal.bessel(4, 0.25, norm='mag')", signal.bessel(4, 0.25, norm="mag")),
    ("signal.iirnotch(60, 30, fs=1000)", signal.iirnotch(60, 30, fs=1000)),
    ("signal.get_window(('kaiser', 6.0), 16)", signal.get_window(("kaiser", 6.0), 16)),
    ("np.hamming(9) + np.hanning(9) - np.blackman(9) * np.bartlett(9)",
     np.hamming(9) + np.hanning(9) - np.blackman(9) * np.bartlett(9)),
    ("np.kaiser(11, 5) ** 2 / 2", np.kaiser(11, 5) ** 2 / 2),
    ("-np.linspace(0, 1, 5)", -np.linspace(0, 1, 5)),
    ("np.arange(1, 4, 0.5) * np.pi", np.arange(1, 4, 0.5) * np.pi),
    ("np.zeros(4) + np.ones(4) * 2", np.zeros(4) + 2.0),
    ("np.array([[1, 2, 3, 1, 0.5, 0.1]])", np.array([[1, 2, 3, 1, 0.5, 0.1]])),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "expected"), DESIGNS, ids=[d[0][:40] for d in DESIGNS])
def test_design_calls_fold_to_scipy_values(expr: str, expected: Any) -> None:
    value = fold(expr)
    if isinstance(expected, tuple):
        assert isinstance(value, tuple) and len(value) == len(expected)
        for v, e in zip(value, expected, strict=True):
            np.testing.assert_allclose(v, e, rtol=1e-13, atol=1e-15)
    else:
        np.testing.assert_allclose(value, expected, rtol=1e-13, atol=1e-15)


# ---- elementwise ------------------------------------------------------------------------------------------------
MAPS = [
    ("x + x", lambda x: x + x),
    ("x - 0.25", lambda x: x - 0.25),
    ("1 - x * x", lambda x: 1 - x * x),
    ("np.abs(x)", np.abs),
    ("np.sqrt(np.abs(x))", lambda x: np.sqrt(np.abs(x))),
    ("np.exp(-np.abs(x))", lambda x: np.exp(-np.abs(x))),
    ("20 * np.log10(np.abs(x) + 1e-9)", lambda x: 20 * np.log10(np.abs(x) + 1e-9)),
    ("np.clip(x, -0.5, 0.75)", lambda x: np.clip(x, -0.5, 0.75)),
    ("np.sign(x) * np.maximum(x, 0.1) + np.minimum(0.2, x)",
     lambda x: np.sign(x) * np.maximum(x, 0.1) + np.minimum(0.2, x)),
    ("x[::2] * x[::2] - signal.lfilter([0.5, 0.5], 1, x)[::2]",
     lambda x: x[::2] ** 2 - signal.lfilter([0.5, 0.5], 1, x)[::2]),
]  # fmt: skip


@pytest.mark.parametrize(("expr", "reference"), MAPS, ids=[m[0] for m in MAPS])
def test_elementwise_matches_numpy_and_fuses(expr: str, reference: Any) -> None:
    graph, y = golden_of(f"def f(x):\n    return {expr}\n")
    np.testing.assert_allclose(y, reference(X), rtol=1e-13, atol=1e-13)
    frames_equal_whole(graph, X, 60)
    optimised, log = run_passes(graph)  # verifies after every pass
    np.testing.assert_allclose(evaluate(optimised, X)[0], y, rtol=1e-13, atol=1e-13)
    assert sum(n.op is Op.MAP for n in optimised.nodes) <= 1 + expr.count("[::2]")
    assert "fuse_elementwise" in [r.name for r in log]


def test_fusion_keeps_shared_values() -> None:
    graph, _ = golden_of("def f(x):\n    a = np.abs(x)\n    return a * a + a\n")
    optimised, _ = run_passes(graph)
    maps = [n for n in optimised.nodes if n.op is Op.MAP]
    assert len(maps) == 1  # abs feeds one reader (the dedup'd product), so the whole chain fuses
    np.testing.assert_allclose(evaluate(optimised, X)[0], np.abs(X) ** 2 + np.abs(X), rtol=1e-13)


# ---- float64 end to end and traceability ------------------------------------------------------------------------
def test_float64_artifact_uses_double_everywhere() -> None:
    src = HEAD + "S = signal.butter(4, 0.1, output='sos')\ndef f(x):\n    return np.abs(signal.sosfilt(S, x))\n"
    plan = translate(src, TranslationRequest(frame_length=32, input_dtype="float64"))
    assert plan.interface["inputs"][0]["dtype"] == "float64" == plan.interface["outputs"][0]["dtype"]
    assert plan.tolerances.dtype == "float64"
    assert "const double *restrict in, double *restrict out" in plan.files["f.h"].decode()
    assert "in_bytes = 8" in plan.files["harness.c"].decode()
    assert "float " not in plan.files["f.c"].decode()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_every_function_and_block_comment_names_its_source_line(dtype: str) -> None:
    src = HEAD + ("T = signal.firwin(15, 0.2)\nb, a = signal.butter(2, 0.1)\n\n\ndef f(x):\n"
                  "    y = signal.lfilter(T, 1.0, x)[::2]\n    z = signal.lfilter(b, a, y)\n"
                  "    return np.maximum(z, 0.0) - 0.5 * y\n")  # fmt: skip
    plan = translate(src, TranslationRequest(frame_length=64, input_dtype=dtype))
    lines = {int(m) for name in ("f.c", "f.h") for m in re.findall(r"\[src:(\d+)\]", plan.files[name].decode())}
    assert {7, 8, 9, 10} <= lines  # def, FIR+decimate, IIR, elementwise
    for name in ("f.c", "harness.c"):
        text = plan.files[name].decode().splitlines()
        for i, line in enumerate(text):
            if re.match(r"^(static )?[a-z_ ]+\**[a-z_]+\(.*\)$", line) and not line.endswith(";"):
                assert "[src:" in text[i - 1] or "[src:" in line, (name, line)
            if line.strip().startswith("/* n") or (line.strip().startswith("for") and "/*" in line):
                assert re.search(r"\[src:\d+\]", line), (name, line)
