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

Rate rule: the input must be a fixed stream (``types.StreamType``: the same ``n`` samples in every frame; a
variable-length stream, after a decimation the frame length is not a multiple of, is refused). The output rate is
the input rate times (output samples per frame) / ``n``, so an ``rfft`` of the graph input runs at
``(n//2 + 1)/n`` and a reduction at ``1/n``: one output frame per input frame always.

Semantics are NumPy's on each frame (``np.fft.*`` with the default ``norm="backward"``; ``np.argmax`` is the first
index of the maximum, or of the first NaN; ``np.max`` propagates NaN). ``reference`` reshapes the whole signal
into frames of ``n`` (its length must be a whole number of frames) and applies the operation to each row, so
frame-by-frame equals whole-signal by construction; ``Streamer`` is stateless. ``reference_fixed`` is the bit-exact
fixed-point path (radix-2 FFT with a halving per stage; see its docstring).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import RawSignal, wide, with_kind
from sigforge.dsp.fixed import (
    FixedPointError,
    IntArray,
    UnsupportedFixedOp,
    check_bits,
    div_round,
    ints,
    mul,
    requantize,
    shift_round,
)
from sigforge.dsp.types import FixedType, Overflow, Rounding, StreamType, overflow_raw, quantize, then

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
    if src.variable:
        raise RuleError(
            f"{p.kind} needs frames of a fixed length, but its input carries a varying number of samples per frame "
            f"({src.describe_count()}); input frame lengths that are a multiple of {src.frame_multiple} give it "
            "whole frames"
        )
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
    return StreamType(dtype, m, src.rate * Fraction(m, params.n), False, then(src.counts, "floor", m, params.n))


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


# --- bit-exact fixed point ---------------------------------------------------------------------------------------


def reference_fixed(
    params: FrameParams,
    x_raw: RawSignal,
    *,
    x: FixedType,
    out: FixedType,
    coef: FixedType | None = None,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
) -> RawSignal:
    """Bit-exact fixed-point golden model for a whole signal of whole frames (each frame alone).

    ``x_raw`` holds raw integers of ``x`` (a complex signal is a ``(re, im)`` pair); results are raw ``out``
    integers (a pair when complex). "Convert" below means: round to ``out.frac`` with ``rounding``, then
    ``overflow`` into ``out``.

    * ``fftshift ifftshift``: the permutation, converted. ``max``: the exact maximum, converted. ``argmax``: the
      first index of the maximum as an integer, converted. ``sum``: the exact int64 sum, converted. ``mean``: the
      exact sum divided by ``n`` with ONE rounding (``fixed.div_round``), then ``overflow``.
    * ``const`` ``mul``: the constants are quantised to ``coef`` (convergent, saturate), the exact products
      converted; ``add sub rsub``: constants quantised to ``coef``, operands aligned to the larger fraction length
      (exact), the exact result converted; ``div`` is refused (``UnsupportedFixedOp``: multiply by the reciprocal).
    * ``fft ifft rfft``: ``n`` must be a power of two. The input is converted to ``out``, then an iterative radix-2
      decimation-in-time FFT (bit-reversed input order, stages of size 2, 4, ..., n) runs in ``out``: twiddles
      ``exp(-+2j*pi*k/size)`` from ``math.cos``/``math.sin`` are quantised to ``coef`` (convergent, saturate), and
      each butterfly computes ``(a + w*b) / 2`` and ``(a - w*b) / 2`` exactly (``a`` shifted to the product's
      ``out.frac + coef.frac`` bits) and rounds ONCE per stage, a shift by ``coef.frac + 1`` with ``rounding``,
      then ``overflow`` into ``out``. So the result approximates ``fft(x) / n`` (``rfft``: its first
      ``n // 2 + 1`` bins) and ``ifft(x)`` itself. ``irfft``: the real part of that inverse FFT of the Hermitian
      extension to ``2 * (n - 1)`` bins (a power of two), which approximates ``irfft(x)``.

    Raises:
        UnsupportedFixedOp: ``const`` with ``div``.
        FixedPointError: a transform size that is not a power of two, a missing ``coef``, a partial frame, or an
            intermediate over 62 bits.
    """
    re, im = (ints(x_raw[0]), ints(x_raw[1])) if isinstance(x_raw, tuple) else (ints(x_raw), None)
    if re.size % params.n or (im is not None and im.shape != re.shape):
        raise FixedPointError(f"{params.kind}: {re.size} samples is not a whole number of {params.n}-sample frames")
    fr, fi = re.reshape(-1, params.n), None if im is None else im.reshape(-1, params.n)
    res_re, res_im = _fixed_frames(params, fr, fi, x=x, out=out, coef=coef, rounding=rounding, overflow=overflow)
    flat = np.ascontiguousarray(res_re.reshape(-1))
    return flat if res_im is None else (flat, np.ascontiguousarray(res_im.reshape(-1)))


def _fixed_frames(
    p: FrameParams,
    fr: IntArray,
    fi: IntArray | None,
    *,
    x: FixedType,
    out: FixedType,
    coef: FixedType | None,
    rounding: Rounding,
    overflow: Overflow,
) -> tuple[IntArray, IntArray | None]:
    def convert(v: IntArray, frac: int) -> IntArray:
        return requantize(v, frac, out, rounding, overflow)

    def need_coef() -> FixedType:
        if coef is None:
            raise FixedPointError(f"{p.kind} needs a coefficient type (coef)")
        return coef

    if p.kind in ("fftshift", "ifftshift"):
        shift = getattr(np.fft, p.kind)
        return convert(shift(fr, axes=1), x.frac), None if fi is None else convert(shift(fi, axes=1), x.frac)
    if p.kind in ("fft", "ifft", "rfft", "irfft"):
        return _fixed_fft(p, fr, fi, x=x, out=out, coef=need_coef(), rounding=rounding, overflow=overflow)
    if p.kind == "const":
        if p.op == "div":
            raise UnsupportedFixedOp("div", "division by a constant array; multiply by its reciprocal instead")
        ct = need_coef()
        c = quantize(p.values, ct, Rounding.CONVERGENT, Overflow.SATURATE)[None, :]
        ci = c if p.op == "mul" else np.zeros_like(c)  # a real constant scales both parts, adds to re only
        re_part = _fixed_const(p.op, fr, c, ffrac=x.frac, cfrac=ct.frac, convert=convert)
        return re_part, None if fi is None else _fixed_const(p.op, fi, ci, ffrac=x.frac, cfrac=ct.frac, convert=convert)
    if p.kind in ("max", "argmax"):
        if fi is not None:
            raise FixedPointError(f"{p.kind} needs a real signal")
        if p.kind == "max":
            return convert(fr.max(axis=1, keepdims=True), x.frac), None
        return convert(np.argmax(fr, axis=1).astype(np.int64)[:, None], 0), None
    parts = [fr] if fi is None else [fr, fi]
    for part in parts:
        check_bits(part, max(p.n - 1, 1).bit_length(), p.kind)
    sums = [part.sum(axis=1, keepdims=True, dtype=np.int64) for part in parts]
    if p.kind == "sum":
        done = [convert(sm, x.frac) for sm in sums]
    else:  # mean: sum * 2**(out.frac - x.frac) / n, one rounding
        up = max(out.frac - x.frac, 0)
        den = p.n << max(x.frac - out.frac, 0)
        done = [overflow_raw(div_round(shift_round(sm, -up, rounding), den, rounding), out, overflow) for sm in sums]
    return done[0], done[1] if len(done) > 1 else None


def _fixed_const(
    op: str, f: IntArray, c: IntArray, *, ffrac: int, cfrac: int, convert: Callable[[IntArray, int], IntArray]
) -> IntArray:
    """``f op c`` (``mul add sub rsub``) exact, then ``convert`` (one part of a frame)."""
    if op == "mul":
        return convert(mul(f, c, "window"), ffrac + cfrac)
    g = max(ffrac, cfrac)
    fa, ca = shift_round(f, ffrac - g, Rounding.FLOOR), shift_round(c, cfrac - g, Rounding.FLOOR)
    exact = {"add": fa + ca, "sub": fa - ca, "rsub": ca - fa}[op]
    return convert(exact, g)


def _fixed_fft(
    p: FrameParams,
    fr: IntArray,
    fi: IntArray | None,
    *,
    x: FixedType,
    out: FixedType,
    coef: FixedType,
    rounding: Rounding,
    overflow: Overflow,
) -> tuple[IntArray, IntArray | None]:
    """``fft ifft rfft irfft`` of ``(frames, n)`` raw frames (see ``reference_fixed``)."""
    re = requantize(fr, x.frac, out, rounding, overflow)
    im = np.zeros_like(re) if fi is None else requantize(fi, x.frac, out, rounding, overflow)
    if p.kind == "irfft":  # Hermitian extension: X[m - k] = conj(X[k]) for 0 < k < n - 1
        re = np.concatenate([re, re[:, -2:0:-1]], axis=1)
        im = np.concatenate([im, -im[:, -2:0:-1]], axis=1)
    size = re.shape[1]
    if size < 1 or size & (size - 1):
        raise FixedPointError(f"the fixed-point {p.kind} needs a power-of-two size, got {size}")
    inverse = p.kind in ("ifft", "irfft")
    re, im = fft_radix2(re, im, inverse=inverse, out=out, coef=coef, rounding=rounding, overflow=overflow)
    if p.kind == "rfft":
        return re[:, : size // 2 + 1], im[:, : size // 2 + 1]
    return (re, None) if p.kind == "irfft" else (re, im)


def _bit_reverse(size: int) -> IntArray:
    bits = size.bit_length() - 1
    return np.asarray([int(format(i, f"0{bits}b")[::-1], 2) if bits else 0 for i in range(size)], dtype=np.int64)


def fft_radix2(
    re: IntArray,
    im: IntArray,
    *,
    inverse: bool,
    out: FixedType,
    coef: FixedType,
    rounding: Rounding,
    overflow: Overflow,
) -> tuple[IntArray, IntArray]:
    """Radix-2 DIT FFT of ``(frames, n)`` raw ``out`` integers with a halving per stage (see ``reference_fixed``).

    Returns raw ``out`` integers approximating ``fft(x) / n`` (``ifft(x)`` when ``inverse``).
    """
    size = re.shape[1]
    order = _bit_reverse(size)
    re, im = re[:, order], im[:, order]
    frames, span, sign = re.shape[0], 2, 1.0 if inverse else -1.0
    while span <= size:
        half = span // 2
        angles = [2.0 * math.pi * k / span for k in range(half)]
        wr = quantize([math.cos(a) for a in angles], coef, Rounding.CONVERGENT, Overflow.SATURATE)
        wi = quantize([sign * math.sin(a) for a in angles], coef, Rounding.CONVERGENT, Overflow.SATURATE)
        r3, i3 = re.reshape(frames, size // span, span), im.reshape(frames, size // span, span)
        ar, ai = shift_round(r3[..., :half], -coef.frac, rounding), shift_round(i3[..., :half], -coef.frac, rounding)
        br, bi = r3[..., half:], i3[..., half:]
        tr = mul(br, wr, "fft") - mul(bi, wi, "fft")
        ti = mul(br, wi, "fft") + mul(bi, wr, "fft")
        shift = coef.frac + 1  # back to out.frac, and the stage's 1/2
        top_r, top_i = ar + tr, ai + ti
        bot_r, bot_i = ar - tr, ai - ti
        new_r = np.concatenate([top_r, bot_r], axis=2)
        new_i = np.concatenate([top_i, bot_i], axis=2)
        re = overflow_raw(shift_round(new_r, shift, rounding), out, overflow).reshape(frames, size)
        im = overflow_raw(shift_round(new_i, shift, rounding), out, overflow).reshape(frames, size)
        span *= 2
    return re, im
