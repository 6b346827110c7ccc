"""Delay block: ``y[n] = x[n - count]`` with ``x[n] = 0`` for ``n < 0`` (the state is the last ``count`` samples).

The frontend uses it for the FM discriminator ``np.angle(x[1:] * np.conj(x[:-1]))``: ``x[:-1]`` aligned with
``x[1:]`` is ``x`` delayed by one sample, so the discriminator streams with the input's length and its first
output is the stand-in ``angle(x[0] * conj(0)) = 0``.

Rate rule: one float or complex input whose samples per frame are at least ``count`` when fixed (a variable
stream may bring fewer, even none, in a frame: generated code then shifts the kept samples); the output has the
input's type and rate. Real or complex samples are delayed alike (zero is ``0`` or ``0 + 0j``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.fixed import IntArray, ints
from sigforge.dsp.types import StreamType

MAX_DELAY = 1 << 16


@dataclass(frozen=True, slots=True)
class DelayParams:
    """Parameters of a delay node.

    Attributes:
        count: samples of delay (>= 1).
    """

    count: int


def infer(params: DelayParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"delay takes exactly one input, got {len(inputs)}")
    if not 1 <= params.count <= MAX_DELAY:
        raise RuleError(f"delay must be 1..{MAX_DELAY} samples, got {params.count}")
    (src,) = inputs
    if not src.dtype.is_float:
        raise RuleError(f"delay takes float or complex streams, got {src.dtype}")
    if not src.variable and src.samples < params.count:
        raise RuleError(f"delay of {params.count} needs frames of at least that many samples, got {src.samples}")
    return src


def reference(params: DelayParams, x: npt.ArrayLike) -> npt.NDArray[Any]:
    """Float64/complex128 golden model for a whole signal."""
    xs = wide(x)
    return np.concatenate([np.zeros(params.count, dtype=xs.dtype), xs])[: xs.size]


class Streamer:
    """Frame-by-frame delay carrying the last ``count`` samples."""

    def __init__(self, params: DelayParams) -> None:
        self._count = params.count
        self.reset()

    def reset(self) -> None:
        """Forget the past (zeros)."""
        self._past: npt.NDArray[Any] = np.zeros(self._count)

    def process(self, frame: npt.ArrayLike) -> npt.NDArray[Any]:
        """Delay one frame."""
        xs = wide(frame)
        joined = np.concatenate([self._past.astype(np.result_type(self._past, xs)), xs])
        self._past = joined[joined.size - self._count :]
        return joined[: xs.size]


def reference_fixed(params: DelayParams, x_raw: npt.ArrayLike) -> IntArray:
    """Bit-exact fixed-point model: ``count`` raw zeros, then ``x_raw`` (same length).

    No arithmetic, so the output has the input's type; a complex stream is delayed as its real and imaginary parts.
    """
    xs = ints(x_raw).reshape(-1)
    return np.concatenate([np.zeros(params.count, dtype=np.int64), xs])[: xs.size]


class FixedStreamer:
    """Frame-by-frame ``reference_fixed``, carrying the last ``count`` raw samples (frames of any length)."""

    def __init__(self, params: DelayParams) -> None:
        self._count = params.count
        self.reset()

    def reset(self) -> None:
        """Forget the past (zeros)."""
        self._past: IntArray = np.zeros(self._count, dtype=np.int64)

    def process(self, frame: npt.ArrayLike) -> IntArray:
        """Delay one frame of raw integers."""
        joined = np.concatenate([self._past, ints(frame).reshape(-1)])
        self._past = joined[joined.size - self._count :]
        return joined[: joined.size - self._count]
