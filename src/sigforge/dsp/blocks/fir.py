"""FIR filter block, optionally keeping only every ``decimation``-th output (polyphase form).

``y[k] = sum_i taps[i] * x[k * decimation - i]`` with ``x[n] = 0`` for ``n < 0``. With ``decimation == 1`` this is
``scipy.signal.lfilter(taps, 1.0, x)``; with ``decimation == M`` it is that followed by ``[::M]``, computed
without the dropped outputs.

Rate rule: ``decimate.decimated``'s: a fixed input with samples per frame a multiple of ``decimation`` gives
``samples // decimation`` per frame, anything else a variable stream of at most ``ceil(samples / decimation)``
(the phase is carried across frames); the rate is ``rate / decimation``. Taps are real and finite; a complex
stream is filtered as its real and imaginary parts (the golden model convolves the complex128 signal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.decimate import decimated
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.fixed import IntArray, ints, requantize
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
    return decimated(src, params.decimation)


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
    return requantize(sums, acc.frac, out, rounding, overflow)


class FixedStreamer:
    """Frame-by-frame ``reference_fixed``: carries the last ``len(taps) - 1`` raw inputs and the decimation phase.

    Frames may have any length; the concatenated outputs equal ``reference_fixed`` on the whole signal.
    """

    def __init__(
        self,
        params: FirParams,
        *,
        coef: FixedType,
        acc: FixedType,
        out: FixedType,
        rounding: Rounding = Rounding.CONVERGENT,
        overflow: Overflow = Overflow.SATURATE,
    ) -> None:
        self._plain = FirParams(params.taps, 1)
        self._decimation = params.decimation
        self._kw: dict[str, Any] = {"coef": coef, "acc": acc, "out": out, "rounding": rounding, "overflow": overflow}
        self.reset()

    def reset(self) -> None:
        """Zero the delay line and the phase."""
        self._history: IntArray = np.zeros(len(self._plain.taps) - 1, dtype=np.int64)
        self._phase = 0

    def process(self, frame: npt.ArrayLike) -> IntArray:
        """Filter one frame of raw integers; returns the kept raw outputs."""
        xs = ints(frame).reshape(-1)
        joined = np.concatenate([self._history, xs])
        ys = reference_fixed(self._plain, joined, **self._kw)[self._history.size :]
        kept = ys[self._phase :: self._decimation]
        self._phase = (self._phase - xs.size) % self._decimation
        if self._history.size:
            self._history = joined[joined.size - self._history.size :]
        return np.ascontiguousarray(kept)
