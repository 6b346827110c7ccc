"""Generated C FFTs (sigforge.dsp.backends.fft_c) against numpy.fft, compiled with the host compiler.

One executable per (n, dtype) holds fft, ifft, rfft and irfft of that length; builds are cached for the run.
Errors are the largest absolute error relative to the RMS of NumPy's float64 result.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sigforge.dsp.backends.fft_c import FFTCode, generate_fft, generate_irfft, generate_rfft

TOL = {"float32": 3e-6, "float64": 1e-13}
SIZES = [1, 2, 3, 4, 5, 7, 8, 12, 16, 60, 97, 128, 1000, 1009, 4096]
DTYPES = ["float32", "float64"]
KINDS = ("fft", "ifft", "rfft", "irfft")

DRIVER = r"""
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
typedef void (*entry)(const T *restrict, T *restrict, T *restrict);
int main(int argc, char **argv)
{
    static const entry fns[4] = {t_fft, t_ifft, t_rfft, t_irfft};
    static const size_t in_len[4] = {IN0, IN1, IN2, IN3}, out_len[4] = {OUT0, OUT1, OUT2, OUT3};
    const int k = argc == 4 ? atoi(argv[1]) : -1;
    FILE *f, *g;
    T *x, *y, *w;
    if (k < 0 || k > 3 || (f = fopen(argv[2], "rb")) == NULL || (g = fopen(argv[3], "wb")) == NULL) return 2;
    x = malloc(sizeof *x * in_len[k]);
    y = malloc(sizeof *y * out_len[k]);
    w = malloc(sizeof *w * (WORK + 1));
    if (x == NULL || y == NULL || w == NULL) return 2;
    while (fread(x, sizeof *x, in_len[k], f) == in_len[k]) {
        memset(y, 0xff, sizeof *y * out_len[k]); /* NaN: every output must be written */
        fns[k](x, y, w);
        if (fwrite(y, sizeof *y, out_len[k], g) != out_len[k]) return 2;
    }
    fclose(g);
    return 0;
}
"""

_BUILT: dict[tuple[int, str], tuple[Path, list[FFTCode]]] = {}


def _codes(n: int, dtype: str) -> list[FFTCode]:
    dt = "float32" if dtype == "float32" else "float64"
    return [
        generate_fft(n, dtype=dt, prefix="t_fft", src_line=3),
        generate_fft(n, dtype=dt, inverse=True, prefix="t_ifft"),
        generate_rfft(n, dtype=dt, prefix="t_rfft"),
        generate_irfft(n, dtype=dt, prefix="t_irfft"),
    ]


def _build(n: int, dtype: str, root: Path, runner, cc) -> tuple[Path, list[FFTCode]]:  # type: ignore[no-untyped-def]
    key = (n, dtype)
    if key not in _BUILT:
        codes = _codes(n, dtype)
        work = root / f"fft_{n}_{dtype}"
        work.mkdir(parents=True, exist_ok=True)
        text = "#include <stddef.h>\n" + "".join(c.declarations for c in codes) + "".join(c.definitions for c in codes)
        (work / "fft.c").write_text(text + DRIVER)
        defs = [f"-DT={codes[0].ctype}", f"-DWORK={max(c.work_len for c in codes)}"]
        defs += [f"-DIN{i}={c.in_len}" for i, c in enumerate(codes)] + [
            f"-DOUT{i}={c.out_len}" for i, c in enumerate(codes)
        ]
        argv = [cc.path, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", *defs, "-o", "fft", "fft.c", "-lm"]
        res = runner.run(argv, cwd=work, timeout_s=120, memory_mb=2048, max_file_mb=64)
        assert res.returncode == 0, res.stderr.decode()
        _BUILT[key] = (work / "fft", codes)
    return _BUILT[key]


def _interleave(z: np.ndarray) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).reshape(z.shape[0], -1)


def _check(n: int, dtype: str, kind: str, x: np.ndarray, root: Path, runner, cc) -> np.ndarray:  # type: ignore[no-untyped-def]
    """Run ``kind`` on the rows of ``x`` (each ``in_len`` values, already of ``dtype``); per row, the error vs numpy."""
    exe, codes = _build(n, dtype, root, runner, cc)
    k = KINDS.index(kind)
    code = codes[k]
    assert x.shape[1] == code.in_len
    (exe.parent / "in.bin").write_bytes(x.tobytes())
    res = runner.run(
        [str(exe), str(k), "in.bin", "out.bin"], cwd=exe.parent, timeout_s=30, memory_mb=512, max_file_mb=64
    )
    assert res.returncode == 0, res.stderr
    y = np.fromfile(exe.parent / "out.bin", dtype=x.dtype).reshape(x.shape[0], code.out_len).astype(np.float64)
    xd = x.astype(np.float64)
    if kind == "fft":
        ref = _interleave(np.fft.fft(xd[:, 0::2] + 1j * xd[:, 1::2], axis=-1))
    elif kind == "ifft":
        ref = _interleave(np.fft.ifft(xd[:, 0::2] + 1j * xd[:, 1::2], axis=-1))
    elif kind == "rfft":
        ref = _interleave(np.fft.rfft(xd, axis=-1))
    else:
        ref = np.fft.irfft(xd[:, 0::2] + 1j * xd[:, 1::2], n, axis=-1)
    assert np.all(np.isfinite(y))
    rms = np.sqrt(np.mean(ref**2, axis=1))
    return np.max(np.abs(y - ref), axis=1) / np.where(rms > 0, rms, 1.0)


def _signals(n_values: int, dtype: str, seed: int) -> np.ndarray:
    """Gaussian noise, an impulse, a full-scale tone and a constant, each ``n_values`` long."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_values)
    rows = [
        rng.standard_normal(n_values),
        (t == min(1, n_values - 1)).astype(float),
        np.cos(0.37 * t),
        np.ones(n_values),
    ]
    return np.asarray(rows, dtype=np.float32 if dtype == "float32" else np.float64)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fft_c")


# --- pure: the generator alone ---------------------------------------------------------------------------------------


def test_algorithm_choice_and_scratch() -> None:
    assert generate_fft(4096, dtype="float32", prefix="f").algorithm == "stockham radices 4x4x4x4x4x4"
    assert generate_fft(128, dtype="float32", prefix="f").algorithm == "stockham radices 4x4x4x2"
    assert generate_fft(1000, dtype="float64", prefix="f").algorithm == "stockham radices 4x2x5x5x5"
    assert generate_fft(7, dtype="float64", prefix="f").work_len == 0
    blue = generate_fft(1009, dtype="float64", prefix="f")
    assert blue.algorithm.startswith("bluestein M=2048")
    assert blue.work_len == 6 * 2048
    code = generate_fft(4096, dtype="float32", prefix="f")
    assert (code.in_len, code.out_len, code.work_len) == (8192, 8192, 4 * 4096)
    assert generate_rfft(4096, dtype="float32", prefix="r").out_len == 2 * 2049
    assert generate_irfft(4096, dtype="float32", prefix="r").in_len == 2 * 2049


def test_generated_text_is_plain_c99_and_traceable() -> None:
    code = generate_fft(60, dtype="float32", prefix="blk3_fft", src_line=12)
    text = code.declarations + code.definitions
    assert "complex.h" not in text and "double" not in text  # float32: no silent promotion
    assert "static void blk3_fft(const float *restrict in, float *restrict out, float *restrict work)" in text
    assert "[src:12]" in text
    assert generate_fft(60, dtype="float32", prefix="blk3_fft", src_line=12) == code  # deterministic
    assert "[src:" not in generate_fft(60, dtype="float32", prefix="x").definitions


@pytest.mark.parametrize(
    "kwargs", [{"n": 0}, {"n": -4}, {"n": 2.0}, {"prefix": "1abc"}, {"prefix": "a-b"}, {"dtype": "int16"}]
)
def test_bad_arguments(kwargs: dict[str, object]) -> None:
    args: dict[str, object] = {"n": 8, "dtype": "float32", "prefix": "f"} | kwargs
    with pytest.raises(ValueError):
        generate_fft(**args)  # type: ignore[arg-type]


# --- compiled against numpy.fft --------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", SIZES)
def test_matches_numpy(n: int, dtype: str, root: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    for kind in KINDS:
        width = {"fft": 2 * n, "ifft": 2 * n, "rfft": n, "irfft": 2 * (n // 2 + 1)}[kind]
        err = _check(n, dtype, kind, _signals(width, dtype, n), root, runner, cc)
        # noise: the stated tolerance; tones and impulses concentrate the output, so max/RMS is inflated (scipy's
        # own complex64 FFT shows 2.7e-6 on the 4096-point tone)
        assert err[0] <= TOL[dtype] and max(err) <= 4 * TOL[dtype], (kind, n, dtype, err)


@pytest.mark.slow
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    n=st.integers(1, 5000),
    dtype=st.sampled_from(DTYPES),
    inverse=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e4]),
)
def test_random_lengths(n: int, dtype: str, inverse: bool, seed: int, scale: float, root: Path, runner, cc) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    x = (scale * rng.standard_normal((2, 2 * n))).astype(np.float32 if dtype == "float32" else np.float64)
    err = _check(n, dtype, "ifft" if inverse else "fft", x, root, runner, cc)
    assert max(err) <= TOL[dtype], (n, dtype, inverse, err)
