"""Test vectors, raw sample codecs and metrics of ``sigforge.dsp.verify``."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from sigforge.dsp.types import DType
from sigforge.dsp.verify import (
    MIN_VECTOR_SAMPLES,
    TONES_COMPLEX,
    TONES_REAL,
    compare,
    decode_samples,
    encode_samples,
    full_scale,
    generate_vectors,
    tolerances_for,
    vector_frames,
)

ALL = [DType.FLOAT32, DType.FLOAT64, DType.COMPLEX64, DType.COMPLEX128, DType.INT16]
NAMES = {"uniform", "gaussian", "impulse", "step", "tone1", "tone2", "tone3", "chirp", "full_scale"}


def by_name(frame: int, dtype: DType, **kw: int) -> dict[str, np.ndarray]:
    return {v.name: v.samples for v in generate_vectors(frame, dtype=dtype, **kw)}


@pytest.mark.parametrize("dtype", ALL)
def test_vectors_are_deterministic_whole_frames_and_exact_in_dtype(dtype: DType) -> None:
    a = generate_vectors(100, dtype=dtype, min_samples=MIN_VECTOR_SAMPLES)
    b = generate_vectors(100, dtype=dtype, min_samples=MIN_VECTOR_SAMPLES)
    assert {v.name for v in a} == NAMES
    for va, vb in zip(a, b, strict=True):
        np.testing.assert_array_equal(va.samples, vb.samples)
        assert va.frames == 21 and va.samples.size == 2100  # 2048 rounded up to whole frames of 100
        assert va.dtype == dtype.value and va.description
        assert np.iscomplexobj(va.samples) == dtype.is_complex
        # Exactly what the harness will read back from the raw file.
        np.testing.assert_array_equal(decode_samples(encode_samples(va.samples, dtype), dtype), va.samples)
    other_seed = generate_vectors(100, dtype=dtype, seed=1)
    assert not np.array_equal(other_seed[0].samples, a[0].samples)


def test_frame_count_rules() -> None:
    assert vector_frames(32) == 3 and vector_frames(32, frames=2) == 3 and vector_frames(32, frames=5) == 5
    assert vector_frames(4096, min_samples=2048) == 3
    assert vector_frames(1000, min_samples=2048) == 3
    assert vector_frames(64, min_samples=2048) == 32
    assert vector_frames(7, min_samples=2048) == 293  # 2051 samples
    with pytest.raises(ValueError):
        vector_frames(0)
    assert all(v.samples.size == 96 for v in generate_vectors(32, frames=2))


@pytest.mark.parametrize("dtype", ALL)
def test_impulse_step_and_full_scale(dtype: DType) -> None:
    v = by_name(64, dtype)
    a = full_scale(dtype)
    assert v["impulse"][0] == a and np.count_nonzero(v["impulse"]) == 1
    assert np.all(v["step"][:3] == 0) and np.all(v["step"][3:] == a)
    fs = v["full_scale"]
    for part in (fs.real, fs.imag) if dtype.is_complex else (fs,):
        assert set(np.unique(part)) == {-a, a}  # hits both rails, nothing else
    for name, x in v.items():
        assert np.max(np.abs(x.real)) <= a and np.max(np.abs(np.imag(x))) <= a, name
    if dtype is DType.INT16:
        assert a == 32767 and all(np.array_equal(x, np.round(x)) for x in v.values())


def _peak_freq(x: np.ndarray) -> float:
    spec = np.fft.fft(x * np.hanning(x.size), 8 * x.size)
    freqs = np.fft.fftfreq(spec.size)
    if not np.iscomplexobj(x):
        keep = freqs >= 0
        spec, freqs = spec[keep], freqs[keep]
    return float(freqs[int(np.argmax(np.abs(spec)))])


@pytest.mark.parametrize("dtype", [DType.FLOAT32, DType.COMPLEX128])
def test_tones_sit_at_their_frequencies_and_are_spread(dtype: DType) -> None:
    v = by_name(256, dtype)
    expected = TONES_COMPLEX if dtype.is_complex else TONES_REAL
    got = [_peak_freq(v[f"tone{i}"]) for i in (1, 2, 3)]
    np.testing.assert_allclose(got, expected, atol=2e-3)
    assert max(expected) - min(expected) > (0.5 if dtype.is_complex else 0.3)


@pytest.mark.parametrize("dtype", [DType.FLOAT64, DType.COMPLEX64])
def test_chirp_sweeps_the_band(dtype: DType) -> None:
    x = by_name(512, dtype)["chirp"]
    quarters = np.array_split(x, 8)
    peaks = [_peak_freq(q) for q in quarters]
    assert all(b > a for a, b in itertools.pairwise(peaks))  # strictly rising
    lo, hi = (-0.5, 0.5) if dtype.is_complex else (0.0, 0.5)
    assert peaks[0] < lo + 0.1 and peaks[-1] > hi - 0.1


def test_codecs_are_little_endian_and_interleaved() -> None:
    assert encode_samples([1.0], DType.FLOAT32) == b"\x00\x00\x80\x3f"
    assert encode_samples([1.0], DType.FLOAT64)[-1:] == b"\x3f"
    assert encode_samples([1 + 2j], DType.COMPLEX64) == encode_samples([1.0, 2.0], DType.FLOAT32)
    assert encode_samples([1 - 2j], DType.COMPLEX128) == encode_samples([1.0, -2.0], DType.FLOAT64)
    assert encode_samples([-2.0, 40000.0], DType.INT16) == b"\xfe\xff\xff\x7f"  # saturates
    with pytest.raises(ValueError, match="whole number"):
        decode_samples(b"\x00" * 7, DType.FLOAT32)


# ---- metrics ----------------------------------------------------------------------------------------------------
REF = np.sin(0.05 * np.arange(256.0)) + 0.3 * np.cos(0.31 * np.arange(256.0))


def test_correct_output_passes_and_a_scaled_one_fails() -> None:
    tol = tolerances_for("float32")
    good = compare(REF + 1e-7, REF, tol, output_frame=64)
    assert good.passed and good.boundary_ok and good.problem is None and good.snr_db is not None
    assert good.snr_db > 100 and good.bound == pytest.approx(1e-4 * np.sqrt(np.mean(REF**2)))
    scaled = compare(REF * 1.001, REF, tol, output_frame=64)
    assert not scaled.passed and scaled.problem is not None and "exceeds the bound" in scaled.problem
    assert scaled.worst_sample == int(np.argmax(np.abs(REF))) and scaled.worst_frame == scaled.worst_sample // 64


def test_one_sample_glitch_after_a_boundary_fails_continuity() -> None:
    tol = tolerances_for("float32")
    glitch = REF.copy()
    glitch[128] += 1e-3  # first sample of frame 2
    m = compare(glitch, REF, tol, output_frame=64)
    assert not m.boundary_ok and not m.passed
    assert m.boundary_max_abs_error == pytest.approx(1e-3) and m.interior_max_abs_error == 0.0
    assert m.worst_frame == 2 and m.problem is not None and "frame boundary" in m.problem
    inside = REF.copy()
    inside[100] += 1e-3  # mid-frame: fails, but continuity is fine
    m2 = compare(inside, REF, tol, output_frame=64)
    assert m2.boundary_ok and not m2.passed and m2.interior_max_abs_error == pytest.approx(1e-3)
    # The start of the stream is not a frame boundary.
    start = REF.copy()
    start[0] += 1e-3
    assert compare(start, REF, tol, output_frame=64).boundary_ok


def test_float64_thresholds_are_much_tighter_than_float32() -> None:
    f32, f64 = tolerances_for(DType.FLOAT32), tolerances_for(DType.FLOAT64)
    assert f64.max_rel_error <= f32.max_rel_error * 1e-4 and f64.min_snr_db >= f32.min_snr_db + 80
    as_f32 = REF.astype(np.float32).astype(np.float64)  # single-precision rounding of a correct result
    assert compare(as_f32, REF, f32, output_frame=64).passed
    assert not compare(as_f32, REF, f64, output_frame=64).passed
    reordered = REF * (1 + 2**-52)  # a few ulps: summation order
    assert compare(reordered, REF, f64, output_frame=64).passed
    assert tolerances_for("complex64").max_rel_error == f32.max_rel_error
    assert tolerances_for("complex128").max_rel_error == f64.max_rel_error


def test_complex_and_bit_exact_comparisons() -> None:
    ref = np.exp(0.1j * np.arange(128.0))
    tol = tolerances_for("complex64")
    assert compare(ref + 1e-7j, ref, tol, output_frame=32).passed
    rotated = compare(ref * np.exp(1e-3j), ref, tol, output_frame=32)  # a phase error shows in |error|
    assert not rotated.passed and rotated.max_abs_error == pytest.approx(1e-3, rel=1e-3)
    ints = np.arange(-50.0, 50.0)
    exact = tolerances_for("int16")
    assert exact.bit_exact and compare(ints, ints, exact, output_frame=10).passed
    off = ints.copy()
    off[37] += 1
    assert not compare(off, ints, exact, output_frame=10).passed


def test_structural_problems() -> None:
    tol = tolerances_for("float32")
    assert compare(REF[:10], REF, tol, output_frame=16).problem == "length mismatch: got 10 samples, expected 256"
    nan = REF.copy()
    nan[3] = np.inf
    assert compare(nan, REF, tol, output_frame=16).problem == "non-finite output"
    assert compare(np.zeros(8), np.zeros(8), tol, output_frame=4).passed
    assert not compare(np.full(8, 1e-5), np.zeros(8), tol, output_frame=4).passed  # abs_floor when RMS is 0
    assert compare(REF, REF, tol, output_frame=16).snr_db is None


def test_nearly_silent_output_is_judged_against_the_absolute_floor() -> None:
    tol = tolerances_for("float32")
    quiet = 1e-4 * REF  # e.g. a tone in a filter's stopband
    rounding = quiet + 3e-8 * np.sign(REF)  # float32 rounding noise of a full-scale computation
    m = compare(rounding, quiet, tol, output_frame=64)
    assert m.passed and m.bound == tol.abs_floor and m.snr_db is not None and m.snr_db < tol.min_snr_db
    assert not compare(quiet + 2e-6, quiet, tol, output_frame=64).passed
    loud = compare(REF + 3e-8, REF, tol, output_frame=64)
    assert loud.bound == pytest.approx(tol.max_rel_error * np.sqrt(np.mean(REF**2)))
