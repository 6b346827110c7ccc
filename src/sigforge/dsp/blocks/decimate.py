"""Decimation block: ``y = x[::factor]`` (keep samples 0, factor, 2*factor, ...).

Rate rule (``decimated``): a fixed input whose samples per frame are a multiple of ``factor`` gives a fixed output
of ``samples // factor`` (every frame starts on a kept sample, the phase is the constant 0); any other input gives
a variable stream of at most ``ceil(samples / factor)`` samples per frame, and generated code carries the phase
(the index of the next kept sample) across frames. The streaming model carries it for any frame length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.fixed import IntArray, ints
from sigforge.dsp.types import StreamType, then

MAX_FACTOR = 1 << 20


@dataclass(frozen=True, slots=True)
class DecimateParams:
    """Parameters of a decimation node.

    Attributes:
        factor: keep every ``factor``-th sample (>= 1).
    """

    factor: int


def infer(params: DecimateParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"decimate takes exactly one input, got {len(inputs)}")
    if not 1 <= params.factor <= MAX_FACTOR:
        raise RuleError(f"decimation factor must be 1..{MAX_FACTOR}, got {params.factor}")
    (src,) = inputs
    return decimated(src, params.factor)


def decimated(src: StreamType, factor: int) -> StreamType:
    """The stream keeping every ``factor``-th sample of ``src`` (also an FIR's with ``decimation == factor``)."""
    if factor == 1:
        return src
    variable = src.variable or src.samples % factor != 0
    return StreamType(src.dtype, -(-src.samples // factor), src.rate / Fraction(factor), variable,
                      then(src.counts, "ceil", 1, factor))  # fmt: skip


def reference(params: DecimateParams, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Float64 golden model for a whole signal."""
    return np.ascontiguousarray(wide(x)[:: params.factor])


class Streamer:
    """Frame-by-frame decimation carrying the phase."""

    def __init__(self, params: DecimateParams) -> None:
        self._factor = params.factor
        self.reset()

    def reset(self) -> None:
        """Start at a kept sample."""
        self._phase = 0

    def process(self, frame: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Decimate one frame."""
        xs = wide(frame)
        kept = xs[self._phase :: self._factor]
        self._phase = (self._phase - xs.size) % self._factor
        return np.ascontiguousarray(kept)


def reference_fixed(params: DecimateParams, x_raw: npt.ArrayLike) -> IntArray:
    """Bit-exact fixed-point model: ``x_raw[::factor]``. No arithmetic, so the output has the input's type."""
    return np.ascontiguousarray(ints(x_raw).reshape(-1)[:: params.factor])


class FixedStreamer:
    """Frame-by-frame ``reference_fixed`` on raw integers, carrying the phase (frames of any length)."""

    def __init__(self, params: DecimateParams) -> None:
        self._factor = params.factor
        self.reset()

    def reset(self) -> None:
        """Start at a kept sample."""
        self._phase = 0

    def process(self, frame: npt.ArrayLike) -> IntArray:
        """Decimate one frame of raw integers."""
        xs = ints(frame).reshape(-1)
        kept = xs[self._phase :: self._factor]
        self._phase = (self._phase - xs.size) % self._factor
        return np.ascontiguousarray(kept)
