"""Numeric types (quantisation, fixed-point FIR) and the verification metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigforge.dsp.blocks import fir
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.types import DType, Overflow, Rounding, parse_dtype, quantize, sfix, to_real, ufix
from sigforge.dsp.verify import TOLERANCES, compare, generate_vectors


def test_quantize_rounding_modes() -> None:
    q = sfix(8, 1)  # lsb 0.5
    vals = [0.25, 0.75, -0.25, -0.75, 0.3]
    assert quantize(vals, q, Rounding.FLOOR).tolist() == [0, 1, -1, -2, 0]
    assert quantize(vals, q, Rounding.NEAREST).tolist() == [1, 2, -1, -2, 1]
    assert quantize(vals, q, Rounding.CONVERGENT).tolist() == [0, 2, 0, -2, 1]


def test_quantize_overflow_modes() -> None:
    q15 = sfix(16, 15)
    assert quantize([1.0, -1.0, -2.0], q15, overflow=Overflow.SATURATE).tolist() == [32767, -32768, -32768]
    assert quantize([1.0], q15, overflow=Overflow.WRAP).tolist() == [-32768]
    u = ufix(8, 0)
    assert quantize([256, -1], u, overflow=Overflow.WRAP).tolist() == [0, 255]
    assert quantize([256, -1], u, overflow=Overflow.SATURATE).tolist() == [255, 0]
    assert to_real([16384], q15).tolist() == [0.5]
    assert str(q15) == "sfix(16,15)"
    with pytest.raises(ValueError):
        sfix(65, 0)
    with pytest.raises(ValueError):
        quantize([math.inf], q15)


def test_dtypes() -> None:
    assert parse_dtype("complex64").is_complex and not DType.INT16.is_float
    assert DType.FLOAT32.numpy.itemsize == 4
    with pytest.raises(ValueError, match="known dtypes"):
        parse_dtype("float16")


def _int_fir(taps: list[int], xs: list[int], shift: int, lo: int, hi: int, acc_bits: int) -> list[int]:
    """Plain-integer reference: exact sums, wrap to the accumulator, convergent shift, saturate."""
    out = []
    for n in range(len(xs)):
        acc = sum(t * xs[n - i] for i, t in enumerate(taps) if n - i >= 0)
        acc = (acc + (1 << (acc_bits - 1))) % (1 << acc_bits) - (1 << (acc_bits - 1))
        q, r = divmod(acc, 1 << shift)
        half = 1 << (shift - 1)
        if r > half or (r == half and q % 2 == 1):
            q += 1
        out.append(min(max(q, lo), hi))
    return out


@settings(max_examples=15, deadline=None)
@given(
    taps=st.lists(st.floats(-0.99, 0.99), min_size=1, max_size=12),
    xs=st.lists(st.integers(-32768, 32767), min_size=1, max_size=40),
)
def test_fixed_point_fir_is_bit_exact_with_integer_reference(taps: list[float], xs: list[int]) -> None:
    coef, acc, out = sfix(16, 15), sfix(40, 30), sfix(16, 15)
    got = fir.reference_fixed(FirParams(tuple(taps)), xs, coef=coef, acc=acc, out=out)
    qtaps = quantize(taps, coef).tolist()
    assert got.tolist() == _int_fir(qtaps, xs, 15, -32768, 32767, 40)


def test_vectors_are_whole_frames_and_deterministic() -> None:
    a, b = generate_vectors(32, frames=2), generate_vectors(32, frames=2)
    assert {v.name for v in a} >= {"uniform", "gaussian", "impulse", "step"}
    for va, vb in zip(a, b, strict=True):
        assert va.frames == 3 and va.samples.size == 96  # at least 3 frames
        np.testing.assert_array_equal(va.samples, vb.samples)
        np.testing.assert_array_equal(va.samples, va.samples.astype(np.float32))


def test_compare_metrics() -> None:
    tol = TOLERANCES[DType.FLOAT32]
    ref = np.sin(np.arange(64.0))
    good = compare(ref + 1e-7, ref, tol, output_frame=16)
    assert good.passed and good.boundary_ok and good.snr_db is not None and good.snr_db > 100
    scaled = compare(ref * 1.001, ref, tol, output_frame=16)
    assert not scaled.passed
    glitch = ref.copy()
    glitch[32] += 0.01  # first sample of frame 2
    g = compare(glitch, ref, tol, output_frame=16)
    assert not g.boundary_ok and not g.passed
    assert compare(ref, ref, tol, output_frame=16).snr_db is None
    assert compare(ref[:10], ref, tol, output_frame=16).problem.startswith("length mismatch")
    nan = ref.copy()
    nan[3] = np.nan
    assert compare(nan, ref, tol, output_frame=16).problem == "non-finite output"
    zero = compare(np.zeros(8), np.zeros(8), tol, output_frame=4)
    assert zero.passed
