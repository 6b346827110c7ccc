"""Complex streams in the frontend and golden model: each op against NumPy/SciPy, streaming == whole signal,
dtype rules (complex -> real after abs/real/imag/angle) and refusals with their location."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal

from sigforge.dsp import golden
from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.types import DType
from sigforge.errors import InvalidAlgorithm

H = "import numpy as np\nfrom scipy import signal\nT = signal.firwin(15, 0.2)\nb, a = signal.butter(2, 0.1)\n"
X = (np.random.default_rng(2).standard_normal(120) + 1j * np.random.default_rng(3).standard_normal(120)) / 2
CASES = [
    ("signal.lfilter(T, 1.0, x)", lambda x: signal.lfilter(signal.firwin(15, 0.2), 1.0, x), "complex128"),
    ("signal.lfilter(b, a, x)[::3]", lambda x: signal.lfilter(*signal.butter(2, 0.1), x)[::3], "complex128"),
    ("x * np.exp(1j * 0.3) - 2 * x", lambda x: x * np.exp(1j * 0.3) - 2 * x, "complex128"),
    ("np.abs(x) * x + x * np.conj(x)", lambda x: np.abs(x) * x + x * np.conj(x), "complex128"),
    ("np.real(x) - np.imag(x) * 2", lambda x: np.real(x) - np.imag(x) * 2, "float64"),
    ("np.angle(x) + np.abs(x)", lambda x: np.angle(x) + np.abs(x), "float64"),
    ("x / 1j + 1", lambda x: x / 1j + 1, "complex128"),
]


@pytest.mark.parametrize(("expr", "ref", "out"), CASES, ids=[c[0] for c in CASES])
def test_op_matches_numpy_and_streams(expr: str, ref, out: str) -> None:  # type: ignore[no-untyped-def]
    graph = parse_python(H + f"def f(x):\n    return {expr}\n", frame_length=12, input_dtype=DType.COMPLEX128)
    assert graph.outputs[0].out.dtype.value == out
    whole = golden.evaluate(graph, X)[0]
    np.testing.assert_allclose(whole, ref(X), rtol=1e-12, atol=1e-12)
    model = golden.StreamingModel(graph)
    frames = np.concatenate([model.process(X[i : i + 12])[0] for i in range(0, X.size, 12)])
    np.testing.assert_allclose(frames, whole, rtol=1e-12, atol=1e-12)


def test_discriminator_definition_and_streaming() -> None:
    graph = parse_python(H + "def f(x):\n    return np.angle(x[1:] * np.conj(x[:-1]))\n", frame_length=7,
                         input_dtype=DType.COMPLEX64)  # fmt: skip
    assert graph.outputs[0].out.dtype is DType.FLOAT32
    whole = golden.evaluate(graph, X[:119])[0]
    assert whole.shape == (119,) and whole[0] == 0.0
    np.testing.assert_allclose(whole[1:], np.angle(X[1:119] * np.conj(X[:118])), rtol=1e-12, atol=1e-12)
    model = golden.StreamingModel(graph)
    frames = np.concatenate([model.process(X[i : i + 7])[0] for i in range(0, 119, 7)])
    np.testing.assert_array_equal(frames, whole)


@pytest.mark.parametrize(
    ("body", "line", "col", "fragment"),
    [
        ("    return np.sqrt(x)\n", 6, 11, "sqrt of a complex stream is not supported"),
        ("    return np.clip(x, -1, 1)\n", 6, 11, "clip of a complex stream"),
        ("    y = np.abs(x)\n    return np.maximum(y, 0) + np.exp(x)\n", 7, 30, "exp of a complex stream"),
        ("    return np.angle(x[1:] * np.conj(T[:-1]))\n", 6, 11, "same signal expression on both sides"),
        ("    return x[1:]\n", 6, 11, "only decimation"),
        ("    return signal.lfilter(T * 1j, 1.0, x)\n", 6, 11, "real numbers"),
    ],
)
def test_complex_refusals_have_locations(body: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(InvalidAlgorithm) as info:
        parse_python(H + "def f(x):\n" + body, frame_length=8, input_dtype=DType.COMPLEX64)
    err = info.value
    assert fragment in err.message, err.message
    assert err.location is not None and (err.location.line, err.location.column) == (line, col), err.location
