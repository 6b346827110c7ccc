"""Complex streams compiled to C and compared with NumPy/SciPy themselves (not only our golden model).

Tolerances: complex64 like float32 (max |error| <= 1e-4 x RMS of |reference|), complex128 like float64 (1e-10).
Real outputs of complex streams (np.abs, np.angle, ...) use the same bound for their precision. The FM
discriminator is compared aligned: C output[1:] == NumPy's ``np.angle(x[1:] * np.conj(x[:-1]))`` on the whole
signal, and C output[0] == 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cbuild import example_options, rel_error, run_c_all
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp.pipeline import TranslationRequest, translate
from sigforge.services.verification import build_and_verify
from sigforge.settings import LimitSettings

LIMITS = LimitSettings(build_timeout_s=60, run_timeout_s=20)
TOL = {"complex64": 1e-4, "complex128": 1e-10}
DTYPES = ("complex64", "complex128")
MIX = """\
import numpy as np
from scipy import signal
T = signal.firwin(31, 0.2)
b, a = signal.butter(3, 0.1)
S = signal.cheby1(4, 1, 0.2, output="sos")
def f(x):
    y = signal.lfilter(T, 1.0, x)
    z = signal.lfilter(b, a, x) * np.exp(1j * 0.3)
    return y[::4], z - 2 * y, np.abs(z) + np.real(x) * np.imag(x), np.conj(x)[::2] * 1j, signal.sosfilt(S, x) / 2
"""


def _mix_expected(x: np.ndarray) -> list[np.ndarray]:
    y = signal.lfilter(signal.firwin(31, 0.2), 1.0, x)
    z = signal.lfilter(*signal.butter(3, 0.1), x) * np.exp(1j * 0.3)
    sos = signal.cheby1(4, 1, 0.2, output="sos")
    return [y[::4], z - 2 * y, np.abs(z) + np.real(x) * np.imag(x), np.conj(x)[::2] * 1j, signal.sosfilt(sos, x) / 2]


def _signal(rng: np.random.Generator, n: int, dtype: str) -> np.ndarray:
    x = rng.standard_normal(n) + 1j * rng.standard_normal(n)
    return x.astype(dtype).astype(np.complex128)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_mixed_complex_graph_matches_numpy(dtype: str, tmp_path: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    plan = translate(MIX, TranslationRequest(frame_length=64, input_dtype=dtype))
    real = "float32" if dtype == "complex64" else "float64"
    assert [o["dtype"] for o in plan.interface["outputs"]] == [dtype, dtype, real, dtype, dtype]
    x = _signal(np.random.default_rng(1), 64 * 5, dtype)
    for got, want in zip(run_c_all(plan, x, tmp_path, runner, cc), _mix_expected(x), strict=True):
        assert rel_error(got, want) <= TOL[dtype]


@pytest.mark.slow
@settings(max_examples=12, deadline=None)
@given(
    dtype=st.sampled_from(DTYPES),
    frame=st.integers(1, 97),
    frames=st.integers(2, 5),
    taps=st.integers(1, 24),
    seed=st.integers(0, 2**16),
)
def test_discriminator_after_fir_matches_numpy(
    dtype: str, frame: int, frames: int, taps: int, seed: int, tmp_path_factory: pytest.TempPathFactory, runner, cc
) -> None:  # type: ignore[no-untyped-def]
    src = (
        f"import numpy as np\nfrom scipy import signal\nH = signal.firwin({taps}, 0.3)\n"
        "def fm(x):\n    y = signal.lfilter(H, 1.0, x)\n    return np.angle(y[1:] * np.conj(y[:-1]))\n"
    )
    plan = translate(src, TranslationRequest(frame_length=frame, input_dtype=dtype))
    rng = np.random.default_rng(seed)
    x = _signal(rng, frame * frames, dtype)
    got = run_c_all(plan, x, tmp_path_factory.getbasetemp() / "fm", runner, cc)[0]
    y = signal.lfilter(signal.firwin(taps, 0.3), 1.0, x)
    want = np.angle(y[1:] * np.conj(y[:-1]))
    assert got.shape == x.shape and got[0] == 0.0
    assert rel_error(got[1:], want) <= TOL[dtype]


COMPLEX_EXAMPLES = [
    p
    for p in sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.py"))
    if example_options(p).get("input_dtype", "").startswith("complex")
]


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["complex64", "complex128"])
@pytest.mark.parametrize("path", COMPLEX_EXAMPLES, ids=[p.stem for p in COMPLEX_EXAMPLES])
def test_complex_examples_pass_full_verification(path: Path, precision: str, tmp_path: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    plan = translate(path.read_text(), TranslationRequest(frame_length=480, input_dtype=precision))
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary
