"""Frame operations: each frame of ``n`` input samples is transformed alone (no state from frame to frame).

Kinds (``FrameParams.kind``) and their rules, ``n`` = the input's samples per frame (``FrameParams.n``):

============  ========================  ===================  ==========================================
kind          input                     output per frame     output dtype
============  ========================  ===================  ==========================================
fft, ifft     real or complex           ``n``                complex of the input's precision
rfft          real                      ``n // 2 + 1``       complex of the input's precision
irfft         complex, ``n >= 2``       ``2 * (n - 1)``      real of the input's precision
fftshift,     any                       ``n``                the input's
ifftshift
sum, mean     real or complex           1                    the input's
max, argmax   real                      1                    the input's (argmax: the index as a float)
const         real or complex           ``n``                the input's (``values`` are real)
============  ========================  ===================  ==========================================

``const`` is an elementwise operation ``op`` (``mul add sub rsub div``) between the frame and a constant array
of exactly ``n`` real values (``x * np.hanning(N)``): ``rsub`` is ``values - x``, ``div`` is ``x / values``.

Rate rule: the output rate is the input rate times (output samples per frame) / ``n``, so an ``rfft`` of the
graph input runs at ``(n//2 + 1)/n`` and a reduction at ``1/n``: one output frame per input frame always.

Semantics are NumPy's on each frame (``np.fft.*`` with the default ``norm="backward"``; ``np.argmax`` is the first
index of the maximum, or of the first NaN; ``np.max`` propagates NaN). ``reference`` reshapes the whole signal
into frames of ``n`` (its length must be a whole number of frames) and applies the operation to each row, so
frame-by-frame equals whole-signal by construction; ``Streamer`` is stateless. No fixed-point path yet.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide, with_kind
from sigforge.dsp.types import StreamType

TRANSFORMS = ("fft", "ifft", "rfft", "irfft", "fftshift", "ifftshift")
REDUCTIONS = ("sum", "mean", "max", "argmax")
KINDS = (*TRANSFORMS, *REDUCTIONS, "const")
CONST_OPS = ("mul", "add", "sub", "rsub", "div")
MAX_FFT = 1 << 16  # the largest transform generated (tables and accuracy are characterised up to here)


@dataclass(frozen=True, slots=True)
class FrameParams:
    """Parameters of a frame node.

    Attributes:
        kind: one of ``KINDS``.
        n: input samples per frame (the frame the operation applies to).
        op: for ``const``: one of ``CONST_OPS``; empty otherwise.
        values: for ``const``: the ``n`` finite real constants; empty otherwise.
    """

    kind: str
    n: int
    op: str = ""
    values: tuple[float, ...] = ()


def out_samples(p: FrameParams) -> int:
    """Output samples per frame."""
    if p.kind == "rfft":
        return p.n // 2 + 1
    if p.kind == "irfft":
        return 2 * (p.n - 1)
    return 1 if p.kind in REDUCTIONS else p.n


def _check(p: FrameParams, src: StreamType) -> None:
    if p.kind not in KINDS:
        raise RuleError(f"unknown frame operation {p.kind!r}")
    if p.n < 1 or src.samples != p.n:
        raise RuleError(f"{p.kind} applies to frames of {p.n} samples, its input has {src.samples}")
    if not src.dtype.is_float:
        raise RuleError(f"{p.kind} needs a float or complex stream, got {src.dtype}")
    if p.kind in ("fft", "ifft", "rfft", "irfft") and out_samples(p) > MAX_FFT:
        raise RuleError(f"{p.kind} of {out_samples(p)} points exceeds the largest supported FFT ({MAX_FFT})")
    if p.kind in ("rfft", "max", "argmax") and src.dtype.is_complex:
        raise RuleError(f"{p.kind} needs a real stream, got {src.dtype}")
    if p.kind == "irfft" and (not src.dtype.is_complex or p.n < 2):
        raise RuleError(f"irfft needs a complex stream of at least 2 bins, got {src.dtype} x {p.n}")
    if p.kind == "const":
        if p.op not in CONST_OPS or len(p.values) != p.n:
            raise RuleError(f"frame constant op {p.op!r} needs {p.n} values, got {len(p.values)}")
        if not all(isinstance(v, float) and np.isfinite(v) for v in p.values):
            raise RuleError("frame constants must be finite real floats")
        if p.op == "div" and any(v == 0.0 for v in p.values):
            raise RuleError("division of a frame by a constant array that holds 0")
    elif p.op or p.values:
        raise RuleError(f"{p.kind} takes no constants")


def infer(params: FrameParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"frame operations take exactly one input, got {len(inputs)}")
    (src,) = inputs
    _check(params, src)
    kind, m = params.kind, out_samples(params)
    dtype = src.dtype
    if kind in ("fft", "ifft", "rfft"):
        dtype = with_kind(src.dtype, True)
    elif kind == "irfft":
        dtype = with_kind(src.dtype, False)
    return StreamType(dtype, m, src.rate * Fraction(m, params.n))


def _apply(p: FrameParams, f: npt.NDArray[Any]) -> npt.NDArray[Any]:
    """The operation on a ``(frames, n)`` array, row by row (float64 / complex128)."""
    if p.kind in ("fft", "ifft", "rfft"):
        return np.asarray(getattr(np.fft, p.kind)(f, axis=1))
    if p.kind == "irfft":
        return np.fft.irfft(f, 2 * (p.n - 1), axis=1)
    if p.kind in ("fftshift", "ifftshift"):
        return np.asarray(getattr(np.fft, p.kind)(f, axes=1))
    if p.kind == "argmax":
        return np.asarray(np.argmax(f, axis=1), dtype=np.float64)[:, None]
    if p.kind in REDUCTIONS:
        return np.asarray(getattr(np, p.kind)(f, axis=1))[:, None]
    c = np.asarray(p.values, dtype=np.float64)
    ops = {"mul": f * c, "add": f + c, "sub": f - c, "rsub": c - f} if p.op != "div" else {"div": f / c}
    return ops[p.op]


def reference(params: FrameParams, x: npt.ArrayLike) -> npt.NDArray[Any]:
    """Float64 (complex128) golden model for a whole signal of whole frames (ValueError otherwise)."""
    xs = wide(x)
    if xs.size % params.n:
        raise ValueError(f"{params.kind}: {xs.size} samples is not a whole number of {params.n}-sample frames")
    with np.errstate(all="ignore"):
        out = _apply(params, xs.reshape(-1, params.n))
    return np.ascontiguousarray(wide(out).reshape(-1))


class Streamer:
    """Frame-by-frame model (stateless): each call takes a whole number of frames."""

    def __init__(self, params: FrameParams) -> None:
        self._params = params

    def reset(self) -> None:
        """Nothing to reset."""

    def process(self, frame: npt.ArrayLike) -> npt.NDArray[Any]:
        """Transform the frame(s)."""
        out: npt.NDArray[Any] = reference(self._params, frame)
        return out
