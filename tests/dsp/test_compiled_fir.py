"""Compiled register-blocked FIR and polyphase kernels against ``scipy.signal.lfilter`` itself, frame by frame.

Draws tap counts across the register block (1..200 taps), decimations 1..9 and frame lengths that give no full
block, full blocks only, and full blocks plus a tail. Tolerance (max abs error / reference RMS): float32 1e-4 (the
float32 threshold of ``dsp.verify``): inputs are exact float32 values, taps are rounded to float32 (relative
2**-24 each) and each output is a float32 sum of up to 200 products in tap order, with or without FMA; the error is
below ~200 * 2**-24 * sum|h x| / RMS, under 1e-5 for these signals. float64: 1e-10 likewise.
"""

from __future__ import annotations

import numpy as np
import pytest
from cbuild import rel_error, run_c
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import signal

from sigforge.dsp.pipeline import TranslationRequest, translate

pytestmark = pytest.mark.slow
TOL = {"float32": 1e-4, "float64": 1e-10}


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(taps=st.integers(1, 200), decimation=st.integers(1, 9), blocks=st.sampled_from([0, 1, 2]),
       tail=st.integers(0, 40), dtype=st.sampled_from(["float32", "float64"]), frames=st.integers(3, 4),
       seed=st.integers(0, 2**16))  # fmt: skip
def test_compiled_fir_matches_lfilter(
    taps, decimation, blocks, tail, dtype, frames, seed, tmp_path_factory, runner, cc
) -> None:
    block = 64 if dtype == "float32" else 32
    outputs = max(1, blocks * block + tail)  # outputs per frame: no full block, whole blocks, blocks + a tail
    per_frame = outputs * decimation
    rng = np.random.default_rng(seed)
    h = rng.standard_normal(taps)
    src = f"import numpy as np\nH = np.array({h.tolist()!r})\ndef f(x):\n    return signal.lfilter(H, 1.0, x)"
    src = "from scipy import signal\n" + src + (f"[::{decimation}]\n" if decimation > 1 else "\n")
    plan = translate(src, TranslationRequest(frame_length=per_frame, input_dtype=dtype))
    x = rng.uniform(-1, 1, per_frame * frames).astype(dtype).astype(np.float64)
    expected = signal.lfilter(h, 1.0, x)[::decimation]
    y = run_c(plan, x, tmp_path_factory.getbasetemp() / "fir", runner, cc)
    assert rel_error(y, expected) <= TOL[dtype], (taps, decimation, per_frame, dtype)


def test_kernel_is_register_blocked_with_a_constant_tail() -> None:
    src = "from scipy import signal\nT = signal.firwin(64, 0.2)\ndef f(x):\n    return signal.lfilter(T, 1.0, x)\n"
    code = translate(src, TranslationRequest(frame_length=200)).files["f.c"].decode()
    assert "static void n1_fir(const float *restrict x, float *restrict y)" in code
    assert "for (k = 0; k < 192; k += 64) { /* 64 outputs in registers" in code
    assert "for (k = 192; k < 200; k += 8) { /* 8 outputs in registers" in code
