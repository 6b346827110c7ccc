"""int16 input: the harness reads little-endian int16 samples and converts each to float32 (exact); every block
then runs as for float32 input, and outputs are float32.

Compared with SciPy itself on the int16 array (SciPy converts to float64): the tolerance is float32's 1e-4 x RMS of
the reference (``dsp.verify``), scale-free, so full-scale integers (|x| <= 32767) need no other bound.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from cbuild import rel_error, run_c
from scipy import signal

from sigforge.dsp.pipeline import TranslationRequest, check, translate
from sigforge.errors import InvalidAlgorithm
from sigforge.services.verification import build_and_verify
from sigforge.settings import LimitSettings

LIMITS = LimitSettings(build_timeout_s=60, run_timeout_s=20)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
FIR = """\
from scipy import signal
T = signal.firwin(63, 0.15)
def f(x):
    return signal.lfilter(T, 1.0, x)[::2]
"""
IIR = """\
from scipy import signal
S = signal.butter(6, 0.1, output="sos")
def f(x):
    return signal.sosfilt(S, x) * 0.5
"""


def _ints(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(-32768, 32768, size=n).astype(np.int16)


def test_int16_request_interface_and_summary() -> None:
    req = TranslationRequest(input_dtype="int16", frame_length=64)
    summary = check(FIR, req)
    assert summary.input_dtype == "int16"
    assert summary.nodes[0].dtype == "int16"
    assert {n.dtype for n in summary.nodes[1:]} == {"float32"}
    plan = translate(FIR, req)
    iface = json.loads(plan.files["interface.json"])
    assert iface["inputs"][0]["dtype"] == "int16"
    assert [o["dtype"] for o in iface["outputs"]] == ["float32"]
    assert not plan.tolerances.bit_exact and plan.tolerances.max_rel_error == 1e-4
    assert "decode_int16" in plan.files["harness.c"].decode()


@pytest.mark.slow
@pytest.mark.parametrize(("source", "expected"), [
    (FIR, lambda x: signal.lfilter(signal.firwin(63, 0.15), 1.0, x)[::2]),
    (IIR, lambda x: signal.sosfilt(signal.butter(6, 0.1, output="sos"), x) * 0.5),
], ids=["fir", "iir"])  # fmt: skip
def test_compiled_int16_matches_scipy(source: str, expected, tmp_path: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    plan = translate(source, TranslationRequest(input_dtype="int16", frame_length=128))
    x = _ints(128 * 24, seed=7)
    x[:2] = (-32768, 32767)  # the extremes convert exactly
    got = run_c(plan, x, tmp_path, runner, cc)
    want = expected(x)
    assert rel_error(got, want) <= 1e-4
    assert rel_error(got, plan.golden(x)[0]) <= 1e-4


@pytest.mark.slow
def test_int16_example_passes_full_verification(tmp_path: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    plan = translate(
        (EXAMPLES / "dc_blocker.py").read_text(), TranslationRequest(input_dtype="int16", frame_length=480)
    )
    outcome = build_and_verify(plan, runner=runner, limits=LIMITS, workdir=tmp_path, cc=cc)
    assert outcome.verified, outcome.summary


@pytest.mark.parametrize("body", ["x + x", "x * 2", "np.abs(x)", "x[::2] * 3", "x * x"])
def test_int16_elementwise_on_raw_input_is_refused(body: str) -> None:
    source = f"import numpy as np\ndef f(x):\n    return {body}\n"
    with pytest.raises(InvalidAlgorithm, match="int16"):
        check(source, TranslationRequest(input_dtype="int16", frame_length=64))
    check(source, TranslationRequest(input_dtype="float32", frame_length=64))  # fine for float input


def test_int16_float_gain_is_accepted() -> None:
    summary = check("def f(x):\n    return x * 0.5\n", TranslationRequest(input_dtype="int16", frame_length=64))
    assert [n.op for n in summary.nodes] == ["input", "gain", "output"]
