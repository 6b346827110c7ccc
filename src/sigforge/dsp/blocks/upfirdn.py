"""Rational resampling block: ``scipy.signal.upfirdn(h, x, up, down)`` as a stream (polyphase).

Semantics: upsample by ``up`` (insert ``up - 1`` zeros after each sample), filter with the FIR ``h``, keep every
``down``-th sample: ``y[k] = sum_j h[j] * u[k * down - j]`` with ``u[m] = x[m / up]`` when ``up`` divides ``m``, else
0, and ``x[n] = 0`` for ``n < 0``. SciPy's ``upfirdn`` on a whole signal also emits the filter's tail (its output
has ``((len(x) - 1) * up + len(h) - 1) // down + 1`` samples); a stream has no end, so the streaming output is the
first ``len(x) * up // down`` of them: ``upfirdn(h, x, up, down)[: len(x) * up // down]``, frame by frame or on
the whole signal alike. (With fewer taps than ``up`` SciPy's output ends before the last input's zero-stuffed slots;
those outputs are defined by the formula above, i.e. SciPy's output for the signal followed by one zero.)

Rate rule: a fixed input with ``samples * up`` a multiple of ``down`` gives a fixed output of
``samples * up // down`` per frame (every frame starts at polyphase phase 0); any other input gives a variable
stream of at most ``ceil(samples * up / down)`` per frame (generated code carries the phase across frames; after
``I`` inputs the stream has produced ``I * up // down`` outputs). The rate is ``rate * up / down``.
Taps are real and finite; a complex stream is filtered as its real and imaginary parts (the golden model runs
``upfirdn`` on the complex128 signal). ``up`` and ``down`` are 1..``MAX_FACTOR``.

Streaming state: the last ``history(params)`` = ``ceil(len(h) / up)`` input samples (enough: output ``k`` reads
inputs ``floor(k * down / up) - r`` for ``r < ceil(len(h) / up)``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy import signal

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.blocks.fir import MAX_TAPS
from sigforge.dsp.fixed import IntArray, ints, mul, requantize
from sigforge.dsp.types import FixedType, Overflow, Rounding, StreamType, overflow_raw, quantize, then

FloatArray = npt.NDArray[np.float64]

MAX_FACTOR = 64  # up and down: keeps the polyphase tables and the per-frame phase pattern small


@dataclass(frozen=True, slots=True)
class UpfirdnParams:
    """Parameters of an upfirdn node.

    Attributes:
        taps: real coefficients ``h`` (float64 as designed).
        up: upsampling factor (1..MAX_FACTOR).
        down: downsampling factor (1..MAX_FACTOR).
    """

    taps: tuple[float, ...]
    up: int
    down: int


def history(params: UpfirdnParams) -> int:
    """Past input samples the stream keeps: ``ceil(len(h) / up)``."""
    return -(-len(params.taps) // params.up)


def branches(params: UpfirdnParams) -> list[tuple[float, ...]]:
    """The ``up`` polyphase branches: branch ``p`` holds ``h[p], h[p + up], h[p + 2 * up], ...`` (no padding)."""
    return [params.taps[p :: params.up] for p in range(params.up)]


def infer(params: UpfirdnParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"upfirdn takes exactly one input, got {len(inputs)}")
    if not 1 <= len(params.taps) <= MAX_TAPS:
        raise RuleError(f"upfirdn needs 1..{MAX_TAPS} taps, got {len(params.taps)}")
    if not all(math.isfinite(t) for t in params.taps):
        raise RuleError("upfirdn taps must be finite")
    for what, factor in (("up", params.up), ("down", params.down)):
        if not 1 <= factor <= MAX_FACTOR:
            raise RuleError(f"upfirdn {what} must be 1..{MAX_FACTOR}, got {factor}")
    (src,) = inputs
    if not src.dtype.is_float:
        raise RuleError(f"upfirdn needs a float or complex stream, got {src.dtype}")
    up, down = params.up, params.down
    variable = src.variable or src.samples * up % down != 0
    return StreamType(src.dtype, -(-src.samples * up // down), src.rate * Fraction(up, down), variable,
                      then(src.counts, "floor", up, down))  # fmt: skip


def reference(params: UpfirdnParams, x: npt.ArrayLike) -> FloatArray:
    """Float64 golden model for a whole signal: ``upfirdn(h, x, up, down)[: len(x) * up // down]``."""
    xs = wide(x)
    n = xs.size * params.up // params.down
    if n == 0:
        return np.zeros(0, dtype=xs.dtype)
    # One trailing zero input changes no earlier output (the filter is causal) and makes SciPy's output long enough
    # even when the taps are shorter than ``up`` (then SciPy stops before the last input's zero-stuffed slots).
    padded = np.concatenate([xs, np.zeros(1, dtype=xs.dtype)])
    full = signal.upfirdn(np.asarray(params.taps, dtype=np.float64), padded, params.up, params.down)
    return np.ascontiguousarray(full[:n])


class Streamer:
    """Frame-by-frame upfirdn for frames of any length, carrying the last inputs and the output count."""

    def __init__(self, params: UpfirdnParams) -> None:
        self._params = params
        self._taps = np.asarray(params.taps, dtype=np.float64)
        self.reset()

    def reset(self) -> None:
        """Zero the history; the next output is output 0."""
        # ceil((L + down) / up) past inputs: with frames of any length an output may come up to ``down / up``
        # inputs after its newest input (generated code has whole frames and keeps ``history(params)``)
        p = self._params
        self._history: npt.NDArray[Any] = np.zeros(-(-(len(p.taps) + p.down) // p.up))
        self._inputs = 0  # input samples consumed so far
        self._outputs = 0  # output samples produced so far

    def process(self, frame: npt.ArrayLike) -> FloatArray:
        """Resample one frame: outputs up to the first ``inputs_so_far * up // down`` (frames of any length)."""
        up, down = self._params.up, self._params.down
        xs = wide(frame)
        joined = np.concatenate([self._history, xs])
        start = self._inputs - self._history.size  # global input index of joined[0]
        self._inputs += xs.size
        end = self._inputs * up // down  # like the whole-signal model: the first inputs * up // down outputs
        ks = np.arange(self._outputs, end)
        self._outputs = end
        self._history = joined[joined.size - self._history.size :]
        if ks.size == 0:
            return np.zeros(0, dtype=joined.dtype)
        full = signal.upfirdn(self._taps, joined, up)  # local upsampled index m - start * up
        # With fewer taps than ``up`` SciPy's output stops short of the last input's zero-stuffed slots, whose
        # outputs are exactly zero: pad to one slot group per input so every index below exists.
        if full.size < joined.size * up:
            full = np.concatenate([full, np.zeros(joined.size * up - full.size, dtype=full.dtype)])
        return np.ascontiguousarray(full[ks * down - start * up])


def _fixed_outputs(
    h: IntArray, joined: IntArray, ks: IntArray, *, start: int, up: int, down: int, acc: FixedType
) -> IntArray:
    """Exact polyphase sums ``sum_r h[p + r*up] * x[q - r]`` (``q, p = divmod(k*down, up)``), wrapped into ``acc``.

    ``joined[i]`` is global input ``start + i``; inputs before ``joined`` are zeros (callers keep enough history).
    """
    rounds = -(-h.size // up)
    hpad = np.concatenate([h, np.zeros(rounds * up - h.size, dtype=np.int64)])
    q, p = np.divmod(ks * down, up)
    sums = np.zeros(ks.size, dtype=np.int64)
    for r in range(rounds):
        local = q - r - start
        ok = (local >= 0) & (local < joined.size)
        xs = np.where(ok, joined[np.clip(local, 0, max(joined.size - 1, 0))] if joined.size else 0, 0)
        sums += mul(hpad[p + r * up], np.asarray(xs, dtype=np.int64), "upfirdn")
    return overflow_raw(sums, acc, Overflow.WRAP)


class FixedStreamer:
    """Bit-exact fixed-point upfirdn, frame by frame (frames of any length; phase and history carried).

    Arithmetic: taps quantised to ``coef`` (convergent, saturate); output ``k`` is the exact sum of its polyphase
    branch's products ``h[p + r*up] * x[q - r]`` (``q, p = divmod(k * down, up)``, no product with an inserted
    zero), wrapped into the accumulator ``acc`` (``acc.frac`` = input frac + ``coef.frac``, width <= 63), then
    rounded to ``out.frac`` with ``rounding`` and brought into ``out``'s range with ``overflow``. After ``I``
    inputs the stream has produced ``I * up // down`` outputs, as ``reference``. A complex stream is resampled
    as its real and imaginary parts.
    """

    def __init__(
        self,
        params: UpfirdnParams,
        *,
        coef: FixedType,
        acc: FixedType,
        out: FixedType,
        rounding: Rounding = Rounding.CONVERGENT,
        overflow: Overflow = Overflow.SATURATE,
    ) -> None:
        self._p = params
        self._h = quantize(params.taps, coef, Rounding.CONVERGENT, Overflow.SATURATE)
        self._acc, self._out, self._rounding, self._overflow = acc, out, rounding, overflow
        self.reset()

    def reset(self) -> None:
        """Zero the history; the next output is output 0."""
        # the oldest input an output of the next frame can read is history(params) + down // up + 1 back
        self._history: IntArray = np.zeros(history(self._p) + self._p.down // self._p.up + 1, dtype=np.int64)
        self._inputs = 0
        self._outputs = 0

    def process(self, frame: npt.ArrayLike) -> IntArray:
        """Resample one frame of raw integers; returns raw ``out`` integers."""
        xs = ints(frame).reshape(-1)
        joined = np.concatenate([self._history, xs])
        start = self._inputs - self._history.size
        self._inputs += xs.size
        end = self._inputs * self._p.up // self._p.down
        ks = np.arange(self._outputs, end, dtype=np.int64)
        self._outputs = end
        self._history = joined[joined.size - self._history.size :]
        sums = _fixed_outputs(self._h, joined, ks, start=start, up=self._p.up, down=self._p.down, acc=self._acc)
        return requantize(sums, self._acc.frac, self._out, self._rounding, self._overflow)


def reference_fixed(
    params: UpfirdnParams,
    x_raw: npt.ArrayLike,
    *,
    coef: FixedType,
    acc: FixedType,
    out: FixedType,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
) -> IntArray:
    """Bit-exact fixed-point golden model for a whole signal: its first ``len(x) * up // down`` outputs."""
    streamer = FixedStreamer(params, coef=coef, acc=acc, out=out, rounding=rounding, overflow=overflow)
    return streamer.process(x_raw)
