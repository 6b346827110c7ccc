"""Scalar gain block: ``y = gain * x`` with a real, finite constant gain.

Rate rule: one input (real or complex); the output has the input's type and rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.fixed import IntArray, ints, mul, requantize
from sigforge.dsp.types import FixedType, Overflow, Rounding, StreamType, quantize


@dataclass(frozen=True, slots=True)
class GainParams:
    """Parameters of a gain node.

    Attributes:
        gain: the real factor.
    """

    gain: float


def infer(params: GainParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"gain takes exactly one input, got {len(inputs)}")
    if not math.isfinite(params.gain):
        raise RuleError(f"gain must be finite, got {params.gain}")
    return inputs[0]


def reference(params: GainParams, x: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Float64 golden model for a whole signal."""
    return params.gain * wide(x)


class Streamer:
    """Frame-by-frame gain (stateless)."""

    def __init__(self, params: GainParams) -> None:
        self._gain = params.gain

    def reset(self) -> None:
        """Nothing to reset."""

    def process(self, frame: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Scale one frame."""
        return self._gain * wide(frame)


def reference_fixed(
    params: GainParams,
    x_raw: npt.ArrayLike,
    *,
    x: FixedType,
    coef: FixedType,
    out: FixedType,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
) -> IntArray:
    """Bit-exact fixed-point gain (stateless, so frame by frame is the same function on each frame).

    The gain is quantised to ``coef`` (convergent, saturate); the product ``x * g`` is exact
    (``x.frac + coef.frac`` fractional bits), then rounded to ``out.frac`` with ``rounding`` and brought into
    ``out``'s range with ``overflow``. A complex stream is scaled as its real and imaginary parts (call it on each).

    Raises:
        FixedPointError: a product that would exceed 62 bits.
    """
    g = quantize([params.gain], coef, Rounding.CONVERGENT, Overflow.SATURATE)
    return requantize(mul(ints(x_raw), g, "gain"), x.frac + coef.frac, out, rounding, overflow)
