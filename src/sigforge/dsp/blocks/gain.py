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
from sigforge.dsp.types import StreamType


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
