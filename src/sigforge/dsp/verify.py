"""Verification maths (pure): test vectors, raw sample codecs, error metrics and the per-dtype pass thresholds.

Invariants:
    * Vectors are deterministic for (frame length, dtype, frames, min_samples, seed), always a whole number
      (>= 3) of frames (more when ``min_samples`` asks for it, rounded up to whole frames), and every sample is
      exactly representable in the input dtype (float32 rounding, int16 integers in [-32767, 32767]). Real dtypes
      give float64 arrays, complex dtypes complex128 arrays; int16 vectors hold the raw integers (full scale is
      32767), float full scale is 1.0 (per component for complex).
    * A float target passes when, for every vector, the largest absolute error ``|target - golden|`` (complex
      modulus for complex outputs) is at most ``bound = max(max_rel_error * RMS of the golden output, abs_floor)``
      and, where the relative term governs, the SNR is at least ``min_snr_db``. The absolute floor (a few ulps of
      full scale) keeps a nearly silent output (a tone in a filter's stopband) from failing on rounding noise.
      ``bit_exact`` thresholds (int16, fixed point) allow no error at all. The thresholds are stated in reports.
    * Frame-boundary continuity: the error in the first ``boundary_window`` output samples after each frame
      boundary (sample ``k * output_frame``, k >= 1, or the given boundaries when the samples per frame vary)
      must meet the same bound; it is reported next to the error
      elsewhere (``interior_max_abs_error``), because a state-carrying bug shows up there first.
    * Raw sample files are little-endian: float32 ``<f4``, float64 ``<f8``, complex as interleaved (re, im) pairs
      of the component type, int16 ``<i2``.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.types import DType

Samples = npt.NDArray[Any]  # float64 for real dtypes, complex128 for complex ones
DEFAULT_SEED = 20240601
MIN_VECTOR_SAMPLES = 2048  # enough to see a long filter's impulse response die out
TONES_REAL = (0.0517, 0.2113, 0.4271)  # cycles/sample, spread over 0..Nyquist (0.5)
TONES_COMPLEX = (-0.3113, 0.0517, 0.2713)  # spread over -Nyquist..Nyquist
SQUARE_HALF_PERIOD = 13  # odd, so the full-scale square wave never lines up with power-of-two frames


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Pass thresholds for one output dtype (see the module docstring)."""

    dtype: str
    max_rel_error: float
    min_snr_db: float
    abs_floor: float
    boundary_window: int = 16
    bit_exact: bool = False

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report."""
        return asdict(self)


# float32: coefficients are rounded to float32 (2**-24 relative) and sums of up to a few thousand products
# accumulate in float32; 1e-4 of the output RMS leaves ~10x margin over that for the tap counts allowed, while a
# 0.1 % scaling or a lost sample is caught.
# float64: a float64 C implementation differs from the float64 NumPy golden model by summation order only. Measured
# (uniform noise, 4096 samples): a 255-tap FIR differs by 2.5e-15 x RMS, 4th-8th order IIRs in sections by <= 1.5e-13;
# 1e-9 keeps >= 5000x margin over that, yet sits 60x below float32's rounding step (2**-24 = 6e-8), so an
# accidental single-precision stage fails. SNR >= 180 dB is the same bound on the RMS error (as 80 dB is for 1e-4).
# High-order IIRs in (b, a) form are ill-conditioned: their summation-order differences reach 3e-8 (butter(8, 0.05))
# and need sections or a plan-specific threshold. The absolute floors are 1/100 of the relative bounds times full
# scale (1.0): ~17 ulps of full scale for float32, so only outputs far below full scale reach them.
# Complex dtypes mirror their component type; int16 (fixed point) must be bit-exact.
TOLERANCES: dict[DType, Tolerances] = {
    DType.FLOAT32: Tolerances("float32", max_rel_error=1e-4, min_snr_db=80.0, abs_floor=1e-6),
    DType.FLOAT64: Tolerances("float64", max_rel_error=1e-9, min_snr_db=180.0, abs_floor=1e-11),
    DType.COMPLEX64: Tolerances("complex64", max_rel_error=1e-4, min_snr_db=80.0, abs_floor=1e-6),
    DType.COMPLEX128: Tolerances("complex128", max_rel_error=1e-9, min_snr_db=180.0, abs_floor=1e-11),
    DType.INT16: Tolerances("int16", max_rel_error=0.0, min_snr_db=0.0, abs_floor=0.0, bit_exact=True),
}


def tolerances_for(dtype: DType | str) -> Tolerances:
    """Thresholds for ``dtype`` (ValueError for a name that is not a ``DType``)."""
    return TOLERANCES[DType(dtype)]


def full_scale(dtype: DType | str) -> float:
    """The largest amplitude vectors use for ``dtype`` (per component for complex)."""
    return 32767.0 if DType(dtype) is DType.INT16 else 1.0


# ---- raw sample files ------------------------------------------------------------------------------------------
def encode_samples(x: npt.ArrayLike, dtype: DType | str) -> bytes:
    """Raw little-endian bytes of ``x`` in ``dtype`` (int16 values are rounded and saturated)."""
    d = DType(dtype)
    a = np.asarray(x)
    if d is DType.INT16:
        return bytes(np.clip(np.rint(a.real), -32768, 32767).astype("<i2").tobytes())
    return bytes(a.astype(d.numpy).tobytes())


def decode_samples(data: bytes, dtype: DType | str) -> Samples:
    """Samples of a raw little-endian file: float64 (real dtypes) or complex128 (complex dtypes).

    Raises:
        ValueError: ``data`` is not a whole number of samples.
    """
    d = DType(dtype)
    size = d.numpy.itemsize
    if len(data) % size:
        raise ValueError(f"{len(data)} bytes is not a whole number of {d.value} samples ({size} bytes each)")
    raw = np.frombuffer(data, dtype=d.numpy)
    return raw.astype(np.complex128 if d.is_complex else np.float64)


# ---- vectors ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class TestVector:
    """One named input signal (a whole number of frames) in ``dtype``'s value domain."""

    __test__ = False  # not a pytest class

    name: str
    samples: Samples
    frames: int
    description: str = ""
    dtype: str = "float32"


def _square(t: npt.NDArray[np.float64], shift: int = 0) -> npt.NDArray[np.float64]:
    return np.where(((t + shift) // SQUARE_HALF_PERIOD) % 2 == 0, 1.0, -1.0)


def _raw_signals(n: int, is_complex: bool, rng: np.random.Generator) -> list[tuple[str, Samples, str]]:
    t = np.arange(n, dtype=np.float64)
    impulse = np.zeros(n)
    impulse[0] = 1.0
    step = np.ones(n)
    step[: min(3, n)] = 0.0  # the step starts just after the first samples, inside frame 0
    if is_complex:
        r = 1 / math.sqrt(2)
        noise_u = rng.uniform(-r, r, n) + 1j * rng.uniform(-r, r, n)
        noise_g = (rng.normal(0.0, 0.5, n) + 1j * rng.normal(0.0, 0.5, n)) * r
        tones = [(f, 0.9 * np.exp(2j * np.pi * f * t)) for f in TONES_COMPLEX]
        chirp = 0.9 * np.exp(2j * np.pi * (-0.5 * t + t * t / (2 * n)))
        square = _square(t) + 1j * _square(t, SQUARE_HALF_PERIOD // 2)
        sweep = "linear chirp, -Nyquist to +Nyquist"
    else:
        noise_u, noise_g = rng.uniform(-1.0, 1.0, n), rng.normal(0.0, 0.5, n)
        tones = [(f, 0.9 * np.sin(2 * np.pi * f * t + 0.3)) for f in TONES_REAL]
        chirp = 0.9 * np.cos(np.pi * t * t / (2 * n))
        square, sweep = _square(t), "linear chirp, 0 to Nyquist"
    out: list[tuple[str, Samples, str]] = [
        ("uniform", noise_u, "uniform noise in [-1, 1) of full scale"),
        ("gaussian", noise_g, "gaussian noise, sigma 0.5 of full scale (clipped)"),
        ("impulse", impulse, "unit impulse at sample 0"),
        ("step", step, "unit step at sample 3"),
    ]
    out += [(f"tone{i + 1}", x, f"tone at {f:+.4f} x fs, 0.9 of full scale") for i, (f, x) in enumerate(tones)]
    out += [("chirp", chirp, sweep), ("full_scale", square, "square wave at full scale")]
    return out


def vector_frames(frame_length: int, *, frames: int = 3, min_samples: int = 0) -> int:
    """Frames per vector: at least ``max(frames, 3)`` and at least ``min_samples`` samples, in whole frames."""
    if frame_length < 1:
        raise ValueError(f"frame_length must be positive, got {frame_length}")
    return max(frames, 3, -(-min_samples // frame_length))


def generate_vectors(
    frame_length: int,
    *,
    dtype: DType | str = DType.FLOAT32,
    frames: int = 3,
    min_samples: int = 0,
    seed: int = DEFAULT_SEED,
) -> list[TestVector]:
    """Deterministic vectors: noise (uniform, gaussian), impulse, step, three tones, a chirp and full scale.

    Args:
        frame_length: input samples per frame.
        dtype: the input dtype (decides real/complex, the full scale and the rounding).
        frames: minimum frames per vector (at least 3 are always used).
        min_samples: minimum samples per vector (rounded up to whole frames).
        seed: RNG seed.
    """
    d = DType(dtype)
    count = vector_frames(frame_length, frames=frames, min_samples=min_samples)
    n = count * frame_length
    scale = full_scale(d)
    vectors = []
    for name, x, description in _raw_signals(n, d.is_complex, np.random.default_rng(seed)):
        v = np.clip(np.real(x), -1.0, 1.0) * scale
        if d.is_complex:
            v = v + 1j * np.clip(np.imag(x), -1.0, 1.0) * scale
        exact = decode_samples(encode_samples(v, d), d)  # exactly what the harness reads
        vectors.append(TestVector(name, exact, count, description, d.value))
    return vectors


# ---- metrics ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Metrics:
    """Comparison of one output against its golden model (``problem`` says why it failed)."""

    samples: int
    max_abs_error: float
    reference_rms: float
    max_rel_error: float
    snr_db: float | None  # None when the error (or the reference) is exactly zero
    boundary_max_abs_error: float
    passed: bool
    boundary_ok: bool
    problem: str | None = None
    interior_max_abs_error: float = 0.0
    bound: float = 0.0
    worst_sample: int | None = None
    worst_frame: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (SNR of an exact match is null)."""
        return asdict(self)


def _failure(a: Samples, problem: str) -> Metrics:
    return Metrics(int(a.size), math.inf, 0.0, math.inf, None, math.inf, False, False, problem, math.inf)


def compare(
    actual: npt.ArrayLike,
    reference: npt.ArrayLike,
    tol: Tolerances,
    *,
    output_frame: int,
    boundaries: Sequence[int] | None = None,
) -> Metrics:
    """Compare an output stream with its golden model (real or complex).

    Args:
        actual: what the target produced.
        reference: the golden model's output.
        tol: thresholds.
        output_frame: output samples per frame (for the frame-boundary check).
        boundaries: where each frame after the first starts in the output, when the samples per frame vary
            (``ir.frame_starts``); replaces the multiples of ``output_frame``.
    """
    a, r = np.asarray(actual), np.asarray(reference)
    if a.shape != r.shape:
        return _failure(a, f"length mismatch: got {a.size} samples, expected {r.size}")
    if a.size == 0:
        return Metrics(0, 0.0, 0.0, 0.0, None, 0.0, True, True)
    if not np.all(np.isfinite(a)):
        return _failure(a, "non-finite output")
    err = np.abs(a.astype(np.complex128) - r) if np.iscomplexobj(a) or np.iscomplexobj(r) else np.abs(a - r)
    err = err.astype(np.float64)
    power = np.abs(r).astype(np.float64) ** 2
    worst = int(np.argmax(err))
    max_abs, rms = float(err[worst]), float(np.sqrt(np.mean(power)))
    relative = tol.max_rel_error * rms
    bound = 0.0 if tol.bit_exact else max(relative, tol.abs_floor)
    noise = float(np.sum(err * err))
    snr = None if noise == 0 or rms == 0 else 10 * math.log10(float(np.sum(power)) / noise)
    frame = max(output_frame, 1)
    starts = list(boundaries) if boundaries is not None else list(range(frame, a.size, frame))
    mask = np.zeros(a.size, dtype=bool)
    for start in starts:
        mask[start : start + tol.boundary_window] = True
    boundary = float(err[mask].max()) if mask.any() else 0.0
    interior = float(err[~mask].max()) if (~mask).any() else 0.0
    boundary_ok = boundary <= bound
    snr_ok = tol.bit_exact or snr is None or relative < tol.abs_floor or snr >= tol.min_snr_db
    passed = max_abs <= bound and snr_ok and boundary_ok
    problem = None
    if not passed:
        where = f"at sample {worst} (frame {_frame_of(worst, frame, boundaries)})"
        problem = (
            f"max |error| {max_abs:.3g} {where} exceeds the bound {bound:.3g}"
            if max_abs > bound
            else f"SNR {snr:.1f} dB is below {tol.min_snr_db:g} dB"
        )
        if not boundary_ok:
            problem += f"; error after a frame boundary {boundary:.3g} vs {interior:.3g} elsewhere"
    return Metrics(int(a.size), max_abs, rms, max_abs / (rms if rms > 0 else 1.0), snr, boundary, passed,
                   boundary_ok, problem, interior, bound, worst, _frame_of(worst, frame, boundaries))  # fmt: skip


def _frame_of(sample: int, frame: int, boundaries: Sequence[int] | None) -> int:
    """The frame an output sample belongs to."""
    if boundaries is None:
        return sample // frame
    return bisect.bisect_right(list(boundaries), sample)
