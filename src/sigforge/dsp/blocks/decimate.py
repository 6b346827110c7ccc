"""Decimation block: ``y = x[::factor]`` (keep samples 0, factor, 2*factor, ...).

Rate rule: the input's samples per frame must be a multiple of ``factor``, so every frame starts on a kept
sample and the phase is constant in generated code; the streaming model still carries a phase so that it works
for any frame length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.types import StreamType

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
    if src.samples % params.factor:
        raise RuleError(f"decimate input has {src.samples} samples per frame, not a multiple of {params.factor}")
    return StreamType(src.dtype, src.samples // params.factor, src.rate / Fraction(params.factor))


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
