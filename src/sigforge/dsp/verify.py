"""Verification maths (pure): test vectors, error metrics and the per-dtype pass thresholds.

Invariants:
    * Vectors are deterministic for a seed and always a whole number (>= 3) of frames, so state carried across
      frame boundaries is exercised.
    * A float target passes when, for every vector, the largest absolute error is at most ``max_rel_error``
      times the RMS of the golden output (``abs_floor`` when that RMS is 0) and the SNR is at least ``min_snr_db``.
      The thresholds are stated in every report. Fixed-point targets (later) must be bit-exact instead.
    * Frame-boundary continuity: the error in the first ``boundary_window`` output samples after each frame
      boundary must meet the same bound; a state-carrying bug shows up there first.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.types import DType

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Tolerances:
    """Pass thresholds for one output dtype (see the module docstring)."""

    dtype: str
    max_rel_error: float
    min_snr_db: float
    abs_floor: float
    boundary_window: int = 16

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form for the report."""
        return asdict(self)


# float32: coefficients are rounded to float32 (2**-24 relative) and sums of up to a few thousand products
# accumulate in float32; 1e-4 of the output RMS leaves ~10x margin over that for the tap counts allowed, while a
# 0.1 % scaling or a lost sample is caught. float64 is set for a later double-precision backend.
TOLERANCES: dict[DType, Tolerances] = {
    DType.FLOAT32: Tolerances("float32", max_rel_error=1e-4, min_snr_db=80.0, abs_floor=1e-6),
    DType.FLOAT64: Tolerances("float64", max_rel_error=1e-10, min_snr_db=200.0, abs_floor=1e-14),
}


def tolerances_for(dtype: DType) -> Tolerances:
    """Thresholds for ``dtype`` (KeyError for dtypes with no float tolerance)."""
    return TOLERANCES[dtype]


@dataclass(frozen=True, slots=True)
class TestVector:
    """One named input signal (a whole number of frames)."""

    __test__ = False  # not a pytest class

    name: str
    samples: FloatArray
    frames: int


def generate_vectors(frame_length: int, *, frames: int = 4, seed: int = 20240601) -> list[TestVector]:
    """Deterministic vectors: uniform and gaussian noise, an impulse, a step, and a multi-tone.

    Args:
        frame_length: input samples per frame.
        frames: frames per vector (at least 3).
        seed: RNG seed.

    Returns:
        Vectors of ``frames * frame_length`` samples each, already representable in float32.
    """
    frames = max(frames, 3)
    n = frames * frame_length
    rng = np.random.default_rng(seed)
    impulse = np.zeros(n)
    impulse[0] = 1.0
    step = np.ones(n)
    step[: min(3, n)] = 0.0  # the step starts just after the first samples, inside frame 0
    t = np.arange(n)
    tones = 0.5 * np.sin(2 * np.pi * 0.013 * t) + 0.25 * np.sin(2 * np.pi * 0.31 * t + 1.0)
    raw = {
        "uniform": rng.uniform(-1.0, 1.0, n),
        "gaussian": rng.normal(0.0, 0.5, n),
        "impulse": impulse,
        "step": step,
        "tones": tones,
    }
    return [TestVector(name, np.asarray(v, dtype=np.float32).astype(np.float64), frames) for name, v in raw.items()]


@dataclass(frozen=True, slots=True)
class Metrics:
    """Comparison of one output against its golden model."""

    samples: int
    max_abs_error: float
    reference_rms: float
    max_rel_error: float
    snr_db: float | None  # None when the error (or the reference) is exactly zero
    boundary_max_abs_error: float
    passed: bool
    boundary_ok: bool
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (SNR of an exact match is null)."""
        return asdict(self)


def compare(actual: npt.ArrayLike, reference: npt.ArrayLike, tol: Tolerances, *, output_frame: int) -> Metrics:
    """Compare an output stream with its golden model.

    Args:
        actual: what the target produced.
        reference: the golden model's output.
        tol: thresholds.
        output_frame: output samples per frame (for the frame-boundary check).
    """
    a = np.asarray(actual, dtype=np.float64)
    r = np.asarray(reference, dtype=np.float64)
    if a.shape != r.shape:
        return Metrics(int(a.size), math.inf, 0.0, math.inf, None, math.inf, False, False,
                       f"length mismatch: got {a.size} samples, expected {r.size}")  # fmt: skip
    if a.size == 0:
        return Metrics(0, 0.0, 0.0, 0.0, None, 0.0, True, True)
    if not np.all(np.isfinite(a)):
        return Metrics(int(a.size), math.inf, 0.0, math.inf, None, math.inf, False, False, "non-finite output")
    err = np.abs(a - r)
    max_abs = float(err.max())
    rms = float(np.sqrt(np.mean(r * r)))
    scale = rms if rms > 0 else 1.0
    bound = tol.max_rel_error * rms if rms > 0 else tol.abs_floor
    noise = float(np.sum(err * err))
    snr = None if noise == 0 or rms == 0 else 10 * math.log10(float(np.sum(r * r)) / noise)
    mask = np.zeros(a.size, dtype=bool)
    for start in range(0, a.size, max(output_frame, 1)):
        mask[start : start + tol.boundary_window] = True
    boundary = float(err[mask].max())
    boundary_ok = boundary <= bound
    snr_ok = snr is None or snr >= tol.min_snr_db
    passed = max_abs <= bound and snr_ok and boundary_ok
    return Metrics(int(a.size), max_abs, rms, max_abs / scale, snr, boundary, passed, boundary_ok)
