"""FIR filter block, optionally keeping only every ``decimation``-th output (polyphase form).

``y[k] = sum_i taps[i] * x[k * decimation - i]`` with ``x[n] = 0`` for ``n < 0``. With ``decimation == 1`` this is
``scipy.signal.lfilter(taps, 1.0, x)``; with ``decimation == M`` it is that followed by ``[::M]``, computed
without the dropped outputs.

Rate rule: the input's samples per frame must be a multiple of ``decimation``; the output has
``samples // decimation`` samples per frame and ``rate / decimation``. Taps are real and finite; a complex
stream is filtered as its real and imaginary parts (the golden model convolves the complex128 signal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.types import FixedType, Overflow, Rounding, StreamType, overflow_raw, quantize

FloatArray = npt.NDArray[np.float64]

MAX_TAPS = 8192  # keeps generated C and golden models small; far above practical designs


@dataclass(frozen=True, slots=True)
class FirParams:
    """Parameters of an FIR node.

    Attributes:
        taps: real coefficients ``b`` (float64 as designed, before any target quantisation).
        decimation: keep every ``decimation``-th output (1 = plain FIR).
    """

    taps: tuple[float, ...]
    decimation: int = 1


def infer(params: FirParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"fir takes exactly one input, got {len(inputs)}")
    if not 1 <= len(params.taps) <= MAX_TAPS:
        raise RuleError(f"fir needs 1..{MAX_TAPS} taps, got {len(params.taps)}")
    if not all(math.isfinite(t) for t in params.taps):
        raise RuleError("fir taps must be finite")
    if params.decimation < 1:
        raise RuleError(f"fir decimation must be >= 1, got {params.decimation}")
    (src,) = inputs
    if src.samples % params.decimation:
        raise RuleError(f"fir input has {src.samples} samples per frame, not a multiple of {params.decimation}")
    return StreamType(src.dtype, src.samples // params.decimation, src.rate / Fraction(params.decimation))


def reference(params: FirParams, x: npt.ArrayLike) -> FloatArray:
    """Float64 golden model for a whole signal."""
    xs = wide(x)
    if xs.size == 0:  # np.convolve refuses empty inputs
        return np.zeros(0)
    full = np.convolve(xs, np.asarray(params.taps, dtype=np.float64))[: xs.size]
    return np.ascontiguousarray(full[:: params.decimation])


class Streamer:
    """Frame-by-frame FIR carrying the delay line and the decimation phase across frames.

    Works for any frame length (not only multiples of ``decimation``): the phase says how many input samples to
    skip before the next kept output.
    """

    def __init__(self, params: FirParams) -> None:
        self._taps = np.asarray(params.taps, dtype=np.float64)
        self._decimation = params.decimation
        self.reset()

    def reset(self) -> None:
        """Zero the delay line and the phase."""
        self._history: npt.NDArray[Any] = np.zeros(self._taps.size - 1)
        self._phase = 0  # index (in this frame) of the next kept output

    def process(self, frame: npt.ArrayLike) -> FloatArray:
        """Filter one frame; returns the kept outputs."""
        xs = wide(frame)
        joined = np.concatenate([self._history, xs])
        if joined.size == 0:
            return np.zeros(0)
        full = np.convolve(joined, self._taps)[self._history.size : joined.size]
        kept = full[self._phase :: self._decimation]
        self._phase = (self._phase - xs.size) % self._decimation
        self._history = joined[joined.size - self._history.size :] if self._history.size else self._history
        return np.ascontiguousarray(kept)


def reference_fixed(
    params: FirParams,
    x_raw: npt.ArrayLike,
    *,
    coef: FixedType,
    acc: FixedType,
    out: FixedType,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
) -> npt.NDArray[np.int64]:
    """Bit-exact fixed-point golden model (whole signal).

    Coefficients are quantized to ``coef``; products ``x * b`` are summed exactly (int64; callers keep
    ``acc.width <= 63``), the sum wraps into ``acc`` (an accumulator register wraps), then it is shifted to
    ``out``'s scale with ``rounding`` and brought into range with ``overflow``. The input raw values are in
    ``x``'s own scale; ``acc.frac`` must equal ``x_frac + coef.frac``, i.e. the caller picks ``acc`` accordingly.

    Args:
        params: the FIR parameters (float taps).
        x_raw: input raw integers.
        coef: coefficient type.
        acc: accumulator type (fractional bits = input frac + coef frac).
        out: output type.
        rounding: rounding for the final shift.
        overflow: overflow handling of the output.

    Returns:
        Raw output integers (int64) of type ``out``.
    """
    b = quantize(params.taps, coef, Rounding.CONVERGENT, Overflow.SATURATE)
    xs = np.asarray(x_raw, dtype=np.int64)
    sums = np.zeros(xs.size, dtype=np.int64)
    for i, tap in enumerate(b.tolist()):
        if tap and i < xs.size:
            sums[i:] += np.int64(tap) * xs[: xs.size - i]
    sums = overflow_raw(sums, acc, Overflow.WRAP)[:: params.decimation]
    shift = acc.frac - out.frac
    if shift > 0:
        if rounding is Rounding.FLOOR:
            shifted = sums >> shift
        else:
            half = np.int64(1) << (shift - 1)
            floor = sums >> shift
            rem = sums - (floor << shift)
            up = rem > half
            # NEAREST: ties away from zero (a negative tie stays at floor); CONVERGENT: ties to even.
            tie_up = (rem == half) & ((sums >= 0) if rounding is Rounding.NEAREST else ((floor & 1) == 1))
            shifted = floor + (up | tie_up).astype(np.int64)
    else:
        shifted = sums << (-shift)
    return overflow_raw(shifted, out, overflow)
