"""Several outputs (``return y1, y2, ...``), possibly at different rates, compiled and compared with SciPy.

Tolerance as in test_compiled_fir: 1e-4 (float32) / 1e-10 (float64) of each output's reference RMS.
"""

from __future__ import annotations

import numpy as np
import pytest
from cbuild import rel_error, run_c_all
from scipy import signal

from sigforge.dsp.backends.c import output_file
from sigforge.dsp.pipeline import TranslationRequest, translate
from sigforge.errors import InvalidAlgorithm

TOL = {"float32": 1e-4, "float64": 1e-10}
SRC = """\
import numpy as np
from scipy import signal
T = signal.firwin(31, 0.2)
S = signal.butter(3, 0.1, output="sos")

def split(x):
    low = signal.lfilter(T, 1.0, x)
    return low, low[::4], np.abs(x - low), signal.sosfilt(S, x)[::2]
"""


def _expected(x: np.ndarray) -> list[np.ndarray]:
    low = signal.lfilter(signal.firwin(31, 0.2), 1.0, x)
    return [low, low[::4], np.abs(x - low), signal.sosfilt(signal.butter(3, 0.1, output="sos"), x)[::2]]


def test_interface_lists_every_output_with_its_file_and_rate() -> None:
    plan = translate(SRC, TranslationRequest(frame_length=64))
    outs = plan.interface["outputs"]
    assert [o["name"] for o in outs] == ["y0", "y1", "y2", "y3"]
    assert [o["file"] for o in outs] == ["OUT.bin", "OUT.1.bin", "OUT.2.bin", "OUT.3.bin"]
    assert [o["samples_per_frame"] for o in outs] == [64, 16, 64, 32]
    assert [o["rate_factor"] for o in outs] == ["1", "1/4", "1", "1/2"]
    assert all(o["dtype"] == "float32" for o in outs)
    header = plan.files["split.h"].decode()
    assert "float *restrict out0, float *restrict out1, float *restrict out2, float *restrict out3)" in header
    assert "#define SPLIT_FRAME_OUT1 16" in header
    x = np.random.default_rng(1).standard_normal(256)
    golden = plan.golden(x)
    assert len(golden) == 4
    for got, want in zip(golden, _expected(x), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_output_file_names() -> None:
    assert output_file(0) == "OUT.bin" and output_file(2) == "OUT.2.bin"
    assert output_file(1, "dir/run.bin") == "dir/run.1.bin" and output_file(3, "result") == "result.3"


def test_returning_a_constant_in_a_tuple_is_refused() -> None:
    with pytest.raises(InvalidAlgorithm, match="signals computed from `x`, not a constant") as info:
        translate("def f(x):\n    return x, 1.0\n", TranslationRequest(frame_length=8))
    assert info.value.location is not None and info.value.location.line == 2


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("frame", [8, 100])
def test_compiled_outputs_match_scipy(dtype: str, frame: int, tmp_path, runner, cc) -> None:
    plan = translate(SRC, TranslationRequest(frame_length=frame, input_dtype=dtype))
    x = np.random.default_rng(frame).uniform(-1, 1, frame * 4).astype(dtype).astype(np.float64)
    got = run_c_all(plan, x, tmp_path, runner, cc)
    for i, (y, want) in enumerate(zip(got, _expected(x), strict=True)):
        assert rel_error(y, want) <= TOL[dtype], (i, dtype, frame)


@pytest.mark.slow
def test_harness_appends_the_index_when_out_has_no_bin_suffix(tmp_path, runner, cc) -> None:
    from cbuild import build

    plan = translate("def f(x):\n    return x, 2.0 * x\n", TranslationRequest(frame_length=4))
    exe = build(plan, tmp_path, runner, cc)
    x = np.arange(8, dtype=np.float32)
    (exe.parent / "in.bin").write_bytes(x.tobytes())
    res = runner.run([str(exe), "in.bin", "result"], cwd=exe.parent, timeout_s=20, memory_mb=512, max_file_mb=8)
    assert res.returncode == 0, res.stderr
    np.testing.assert_array_equal(np.fromfile(exe.parent / "result", dtype="<f4"), x)
    np.testing.assert_array_equal(np.fromfile(exe.parent / "result.1", dtype="<f4"), 2 * x)
