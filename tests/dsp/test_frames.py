"""Frame operations: np.fft.*, window arrays and per-frame reductions (golden, interface, refusals, compiled C).

Frame semantics: every frame is transformed alone, so the translated function equals the Python function applied
to each frame of the signal; compiled C is compared with NumPy itself, frame by frame. Tolerances as in the other
compiled tests: max |error| <= 1e-4 x RMS (float32/complex64) or 1e-10 x RMS (float64/complex128).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cbuild import rel_error, run_c_all
from hypothesis import given, settings
from hypothesis import strategies as st

from sigforge.dsp import golden
from sigforge.dsp.frontends.python_subset import parse_python
from sigforge.dsp.pipeline import TranslationRequest, translate
from sigforge.dsp.types import DType
from sigforge.errors import InvalidAlgorithm, InvalidInput

TOL = {"float32": 1e-4, "complex64": 1e-4, "float64": 1e-10, "complex128": 1e-10}
H = "import numpy as np\n"  # one line: user code starts at line 2

MIX = """\
import numpy as np
N = 48
W = np.hanning(N)
def f(x):
    X = np.fft.rfft(x * W)
    p = np.abs(X) ** 2
    return (10 * np.log10(p + 1e-12), np.argmax(np.abs(X)), np.fft.fft(x), np.mean(x), np.sum(x),
            np.fft.fftshift(np.fft.ifft(x)), np.max(np.real(x)), np.fft.irfft(np.fft.rfft(np.real(x))),
            2.0 - x / (W + 1.0))
"""


def _mix(frame: np.ndarray) -> list[Any]:
    w = np.hanning(frame.size)
    spec = np.fft.rfft(frame * w) if not np.iscomplexobj(frame) else None
    r = np.real(frame)
    outs = [
        10 * np.log10(np.abs(spec) ** 2 + 1e-12) if spec is not None else None,
        np.argmax(np.abs(spec)) if spec is not None else None,
        np.fft.fft(frame),
        np.mean(frame),
        np.sum(frame),
        np.fft.fftshift(np.fft.ifft(frame)),
        np.max(r),
        np.fft.irfft(np.fft.rfft(r)),
        2.0 - frame / (w + 1.0),
    ]
    return outs


def _per_frame(x: np.ndarray, n: int) -> list[np.ndarray]:
    frames = [_mix(x[i : i + n]) for i in range(0, x.size, n)]
    return [np.concatenate([np.atleast_1d(f[k]) for f in frames]) for k in range(len(frames[0]))]


def test_golden_is_numpy_on_each_frame_and_streams_alike() -> None:
    graph = parse_python(MIX, frame_length=48, input_dtype=DType.FLOAT64)
    x = np.random.default_rng(2).standard_normal(48 * 4)
    whole = golden.evaluate(graph, x)
    for got, want in zip(whole, _per_frame(x, 48), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    model = golden.StreamingModel(graph)
    framed = [model.process(x[i : i + 48]) for i in range(0, x.size, 48)]
    for k, want in enumerate(whole):
        np.testing.assert_array_equal(np.concatenate([f[k] for f in framed]), want)


def test_interface_rates_and_dtypes() -> None:
    plan = translate(MIX, TranslationRequest(frame_length=48, input_dtype="float32"))
    outs = [(o["dtype"], o["samples_per_frame"], o["rate_factor"]) for o in plan.interface["outputs"]]
    assert outs == [
        ("float32", 25, "25/48"), ("float32", 1, "1/48"), ("complex64", 48, "1"), ("float32", 1, "1/48"),
        ("float32", 1, "1/48"), ("complex64", 48, "1"), ("float32", 1, "1/48"), ("float32", 48, "1"),
        ("float32", 48, "1"),
    ]  # fmt: skip
    source = plan.files["f.c"].decode()
    assert "rfft" in source and "[src:5]" in source
    decimated = translate(H + "def f(x):\n    return np.fft.rfft(x[::4])\n", TranslationRequest(frame_length=64))
    (port,) = decimated.interface["outputs"]
    assert (port["dtype"], port["samples_per_frame"], port["rate_factor"]) == ("complex64", 9, "9/64")


def test_reductions_of_constants_fold() -> None:
    src = (
        H + "T = np.ones(4)\nG = T / np.sum(T) * np.max(T) + np.argmax([1.0, 3.0, 2.0])\ndef f(x):\n    return x * G\n"
    )
    graph = parse_python(src, frame_length=4, input_dtype=DType.FLOAT64)
    x = np.arange(8.0)
    np.testing.assert_allclose(golden.evaluate(graph, x)[0], x * np.tile(np.full(4, 1.25), 2))


# (source after H, line, column, message fragment); error type InvalidAlgorithm unless stated
BAD: list[tuple[str, int, int, str]] = [
    ("def f(x):\n    return np.fft.fft(x, n=32)\n", 3, 11, "n=32 is not supported"),
    ("def f(x):\n    return np.fft.rfft(x, 128)\n", 3, 11, "n=128 is not supported"),
    ("def f(x):\n    return np.fft.fft(x, axis=0)\n", 3, 11, "axis="),
    ("def f(x):\n    return np.fft.fft(x, norm='ortho')\n", 3, 11, "norm="),
    ("def f(x):\n    return np.sum(x, axis=0)\n", 3, 11, "axis="),
    ("def f(x):\n    return np.fft.fftshift(x, n=64)\n", 3, 11, "n=64 is not supported"),
    ("def f(x):\n    return x + np.fft.fft(np.ones(64))\n", 3, 15, "of a constant is not supported"),
    ("def f(x):\n    return np.fft.rfft(x * 1j)\n", 3, 11, "rfft needs a real stream"),
    ("def f(x):\n    return np.argmax(x * 1j)\n", 3, 11, "argmax needs a real stream"),
    ("def f(x):\n    return np.fft.irfft(x)\n", 3, 11, "irfft needs a complex stream"),
    ("def f(x):\n    return np.abs(x) ** 3\n", 3, 11, "only sig ** 2"),
    ("def f(x):\n    return np.ones(64) / x\n", 3, 11, "constant array"),
    ("def f(x):\n    return x * (np.ones(64) * 1j)\n", 3, 11, "complex arrays are not supported"),
    ("def f(x):\n    return x / np.zeros(64)\n", 3, 11, "holds 0"),
    ("def f(x):\n    return x * np.hanning(63)\n", 3, 11, "constant array of shape (63,)"),
    ("def f(x):\n    return x[::2] * np.hanning(64)\n", 3, 11, "32 samples per frame"),
    ("def f(x):\n    return np.fft.fft(np.fft.rfft(x) * np.hanning(64))\n", 3, 22, "33 samples per frame"),
]


@pytest.mark.parametrize(("body", "line", "col", "fragment"), BAD, ids=[b[3] for b in BAD])
def test_refusals_point_at_the_construct(body: str, line: int, col: int, fragment: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_python(H + body, frame_length=64, input_dtype=DType.FLOAT32)
    err = info.value
    assert fragment in str(err), str(err)
    assert err.location is not None and (err.location.line, err.location.column) == (line, col), err.location
    if "samples per frame" in fragment or "shape" in fragment:
        assert not isinstance(err, InvalidAlgorithm) and err.pointer == "/frame_length"


def _signal(rng: np.random.Generator, n: int, dtype: str) -> np.ndarray:
    x = rng.standard_normal(n)
    if dtype.startswith("complex"):
        x = x + 1j * rng.standard_normal(n)
    return x.astype(dtype).astype(np.complex128 if dtype.startswith("complex") else np.float64)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mixed_frame_graph_matches_numpy(dtype: str, tmp_path: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    plan = translate(MIX, TranslationRequest(frame_length=48, input_dtype=dtype))
    x = _signal(np.random.default_rng(3), 48 * 4, dtype)
    for k, (got, want) in enumerate(zip(run_c_all(plan, x, tmp_path, runner, cc), _per_frame(x, 48), strict=True)):
        tol = 1e-3 if k == 0 and dtype == "float32" else TOL[dtype]  # dB: 1e-4 of |X|^2 near its noise floor
        assert rel_error(got, want) <= tol, (k, rel_error(got, want))


KINDS = ["fft", "ifft", "rfft", "irfft", "fftshift", "ifftshift", "sum", "mean", "max", "argmax"]
REAL_ONLY = {"rfft", "max", "argmax"}


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(
    kind=st.sampled_from(KINDS),
    dtype=st.sampled_from(["float32", "float64", "complex64", "complex128"]),
    n=st.sampled_from([1, 2, 5, 12, 31, 64, 97, 120]),
    decimate=st.sampled_from([1, 2]),
    seed=st.integers(0, 2**16),
)
def test_frame_operation_matches_numpy(  # type: ignore[no-untyped-def]
    kind: str, dtype: str, n: int, decimate: int, seed: int, tmp_path_factory, runner, cc
) -> None:
    is_complex = dtype.startswith("complex")
    if kind == "irfft" and not is_complex:
        dtype, is_complex = {"float32": "complex64", "float64": "complex128"}[dtype], True
    if kind in REAL_ONLY and is_complex:
        dtype, is_complex = {"complex64": "float32", "complex128": "float64"}[dtype], False
    frame = n * decimate
    inner = "x[::2]" if decimate == 2 else "x"
    func = {"sum": "np.sum", "mean": "np.mean", "max": "np.max", "argmax": "np.argmax"}.get(kind, f"np.fft.{kind}")
    if kind == "irfft" and n < 2:
        n, frame = 2, 2 * decimate
    src = H + f"def f(x):\n    return {func}({inner})\n"
    plan = translate(src, TranslationRequest(frame_length=frame, input_dtype=dtype))
    x = _signal(np.random.default_rng(seed), frame * 3, dtype)
    fn = getattr(np, kind) if kind in ("sum", "mean", "max", "argmax") else getattr(np.fft, kind)
    want = np.concatenate([np.atleast_1d(fn(x[i : i + frame][::decimate])) for i in range(0, x.size, frame)])
    (got,) = run_c_all(plan, x, tmp_path_factory.mktemp("c"), runner, cc)
    assert rel_error(got, want.astype(got.dtype)) <= TOL[plan.interface["outputs"][0]["dtype"]], (src, frame)
