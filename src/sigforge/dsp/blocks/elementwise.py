"""Elementwise map block: ``y[k] = f(x0[k], x1[k], ...)`` for a small expression tree ``f``.

An expression is a nested tuple: ``("in", i)`` reads input ``i``, ``("const", v)`` is a finite real (``float``)
or complex (``complex``) constant, and ``(op, *args)`` applies an operation from ``OPS``. The frontend makes
one-operation maps; the ``fuse_elementwise`` pass composes chains of them into one tree, so generated code runs
one loop per chain.

Rate rule: every input has the same samples per frame and rate, and the same precision (float32/complex64 or
float64/complex128); inputs may be real or complex. Variable-length inputs (``types.StreamType``) must also have
the same count function, so every frame brings the same number of samples of each (``x[::3] + y[::3]``).
Every input index below the arity is used, constants are finite and a tree has at most ``MAX_EXPR_NODES`` nodes.
Maps are stateless, so frame-by-frame equals whole-signal trivially.

Type rule (``expr_is_complex``), NumPy's: ``add sub mul neg`` are complex when any operand is (a real operand is
promoted to complex, imaginary part 0); ``conj`` keeps the kind; ``abs real imag angle`` give real values;
``sqrt exp log10 sign maximum minimum clip`` are real-only (a complex operand is a ``RuleError``). The output
dtype is the inputs' precision with that kind (complex64 -> float32 after ``abs``).

``angle`` is ``arctan2(imag + 0.0, real + 0.0)``: NumPy's ``np.angle`` except that a zero of either sign counts
as +0, so the result lies in (-pi, pi] and ``angle(0) == 0``. Signed zeros are not preserved by equally valid
evaluation orders (FMA contraction, a different summation order), and NumPy's answer on them jumps by 2*pi.
"""

from __future__ import annotations

import cmath
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.fixed import (
    CORDIC_ITERATIONS,
    FixedPointError,
    IntArray,
    UnsupportedFixedOp,
    cordic_angle,
    ints,
    mul,
    requantize,
    shift_round,
    sqrt_round,
)
from sigforge.dsp.types import DType, FixedType, Overflow, Rounding, StreamType, overflow_raw, quantize

FloatArray = npt.NDArray[np.float64]
Expr = tuple[Any, ...]

MAX_EXPR_NODES = 256  # a fused chain longer than this stays split (keeps generated lines and recursion small)


def _clip(x: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    return np.minimum(np.maximum(x, lo), hi)  # what np.clip does for lo <= hi, NaN-propagating


def angle(z: npt.ArrayLike) -> FloatArray:
    """``np.angle`` with zeros of either sign counted as +0: values in (-pi, pi], ``angle(0) == 0``."""
    zs = np.asarray(z)
    return np.asarray(np.arctan2(np.imag(zs) + 0.0, np.real(zs) + 0.0), dtype=np.float64)


# name -> (arity, NumPy golden function)
OPS: dict[str, tuple[int, Callable[..., FloatArray]]] = {
    "add": (2, np.add),
    "sub": (2, np.subtract),
    "mul": (2, np.multiply),
    "neg": (1, np.negative),
    "abs": (1, np.abs),
    "sqrt": (1, np.sqrt),
    "exp": (1, np.exp),
    "log10": (1, np.log10),
    "sign": (1, np.sign),
    "maximum": (2, np.maximum),
    "minimum": (2, np.minimum),
    "clip": (3, _clip),
    "real": (1, np.real),
    "imag": (1, np.imag),
    "conj": (1, np.conj),
    "angle": (1, angle),
}
COMPLEX_IN_OUT = ("add", "sub", "mul", "neg", "conj")  # complex when an operand is complex
COMPLEX_TO_REAL = ("abs", "real", "imag", "angle")  # accept complex operands, give real values
REAL_ONLY = tuple(op for op in OPS if op not in COMPLEX_IN_OUT + COMPLEX_TO_REAL)


@dataclass(frozen=True, slots=True)
class MapParams:
    """Parameters of an elementwise node.

    Attributes:
        expr: the expression tree over the node's inputs.
    """

    expr: Expr


def walk(expr: Expr) -> list[Expr]:
    """Every node of ``expr`` (pre-order)."""
    out = [expr]
    if expr[0] not in ("in", "const"):
        for arg in expr[1:]:
            out.extend(walk(arg))
    return out


def arity(expr: Expr) -> int:
    """Number of inputs the expression reads (1 + the largest input index)."""
    return 1 + max((e[1] for e in walk(expr) if e[0] == "in"), default=-1)


def _check(expr: Expr) -> None:
    if not isinstance(expr, tuple) or not expr:
        raise RuleError(f"malformed map expression {expr!r}")
    head = expr[0]
    if head == "in":
        if len(expr) != 2 or not isinstance(expr[1], int) or expr[1] < 0:
            raise RuleError(f"malformed map input {expr!r}")
    elif head == "const":
        if len(expr) != 2 or not isinstance(expr[1], (float, complex)) or not cmath.isfinite(expr[1]):
            raise RuleError(f"map constants must be finite floats or complex numbers, got {expr[1:]!r}")
    elif head in OPS:
        if len(expr) - 1 != OPS[head][0]:
            raise RuleError(f"map op {head} takes {OPS[head][0]} arguments, got {len(expr) - 1}")
        for arg in expr[1:]:
            _check(arg)
    else:
        raise RuleError(f"unknown map op {head!r}")


def infer(params: MapParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    _check(params.expr)
    nodes = walk(params.expr)
    if len(nodes) > MAX_EXPR_NODES:
        raise RuleError(f"map expression has {len(nodes)} nodes, more than {MAX_EXPR_NODES}")
    n = arity(params.expr)
    if n < 1 or len(inputs) != n or {e[1] for e in nodes if e[0] == "in"} != set(range(n)):
        raise RuleError(f"map reads inputs {sorted({e[1] for e in nodes if e[0] == 'in'})} but has {len(inputs)}")
    first = inputs[0]
    if not first.dtype.is_float:
        raise RuleError(f"elementwise operations need float or complex streams, got {first.dtype}")
    for other in inputs[1:]:
        if (other.samples, other.rate, other.variable) != (first.samples, first.rate, first.variable) or precision(
            other.dtype
        ) != precision(first.dtype):
            raise RuleError(f"elementwise operands differ in precision or rate: {first} vs {other}")
        if first.variable and other.counts != first.counts:
            raise RuleError(f"elementwise operands carry different numbers of samples per frame: {first} vs {other}")
    kinds = [s.dtype.is_complex for s in inputs]
    return replace(first, dtype=with_kind(first.dtype, expr_is_complex(params.expr, kinds)))


def precision(dtype: DType) -> int:
    """Bits of one real scalar: 32 for float32/complex64, 64 for float64/complex128 (0 for integers)."""
    return {DType.FLOAT32: 32, DType.COMPLEX64: 32, DType.FLOAT64: 64, DType.COMPLEX128: 64}.get(dtype, 0)


def with_kind(dtype: DType, is_complex: bool) -> DType:
    """The dtype of ``dtype``'s precision that is complex or real."""
    if precision(dtype) == 32:
        return DType.COMPLEX64 if is_complex else DType.FLOAT32
    return DType.COMPLEX128 if is_complex else DType.FLOAT64


def expr_is_complex(expr: Expr, inputs: Sequence[bool]) -> bool:
    """Whether ``expr`` has complex values, given which inputs are complex (RuleError on a type violation)."""
    head = expr[0]
    if head == "in":
        return bool(inputs[expr[1]])
    if head == "const":
        return isinstance(expr[1], complex)
    kinds = [expr_is_complex(a, inputs) for a in expr[1:]]
    if head in COMPLEX_IN_OUT:
        return any(kinds)
    if head in REAL_ONLY and any(kinds):
        raise RuleError(f"map op {head} is defined for real values only, got a complex operand")
    return False


def wide(x: npt.ArrayLike) -> npt.NDArray[Any]:
    """``x`` as float64, or complex128 when it is complex: the golden models' working types."""
    xs = np.asarray(x)
    return xs.astype(np.complex128 if np.iscomplexobj(xs) else np.float64, copy=False)


def evaluate(expr: Expr, args: Sequence[npt.NDArray[Any]]) -> npt.NDArray[Any]:
    """The float64/complex128 value of ``expr`` on whole input arrays (IEEE: log10(0) = -inf, no exceptions)."""
    head = expr[0]
    if head == "in":
        return wide(args[expr[1]])
    if head == "const":
        return np.full(len(args[0]) if args else 0, expr[1])
    with np.errstate(all="ignore"):
        return wide(OPS[head][1](*(evaluate(a, args) for a in expr[1:])))


def reference(params: MapParams, *xs: npt.ArrayLike) -> npt.NDArray[Any]:
    """Float64 (complex128 for complex values) golden model for whole signals."""
    return evaluate(params.expr, [wide(x) for x in xs])


class Streamer:
    """Frame-by-frame map (stateless)."""

    def __init__(self, params: MapParams) -> None:
        self._params = params

    def reset(self) -> None:
        """Nothing to reset."""

    def process(self, *frames: npt.ArrayLike) -> FloatArray:
        """Map one frame of each input."""
        return reference(self._params, *frames)


# --- bit-exact fixed point ---------------------------------------------------------------------------------------

RawSignal = IntArray | tuple[IntArray, IntArray]  # a real raw signal, or a complex one as (re, im)
_Value = tuple[IntArray, IntArray | None, int]  # re, im (None: real), fractional bits of the exact value

# Ops with no fixed-point golden model, and why (refused before any arithmetic with UnsupportedFixedOp).
FIXED_UNSUPPORTED = {
    "exp": "a transcendental function; use a lookup table or a float stream",
    "log10": "a transcendental function with a pole at 0; use a lookup table or a float stream",
}


def reference_fixed(
    params: MapParams,
    *xs: RawSignal,
    types: Sequence[FixedType],
    out: FixedType,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
    iterations: int = CORDIC_ITERATIONS,
) -> RawSignal:
    """Bit-exact fixed-point golden model (stateless: frame by frame is the same function on each frame).

    Input ``i`` holds raw integers of ``types[i]`` (a complex input is a ``(re, im)`` pair). Every operation is
    computed exactly and its result is converted to ``out`` (rounding shift, then ``overflow``), like a single
    fixed-point "fimath" for the whole tree; constants are quantised to ``out`` (convergent, saturate):

    * ``add sub maximum minimum clip``: operands aligned to the larger fraction length (exact left shift);
    * ``mul``: exact product (fraction lengths add); complex ``(ar*br - ai*bi, ar*bi + ai*br)`` summed exactly;
    * ``neg abs conj real imag``: exact (``-min`` saturates or wraps in ``out``); complex ``abs`` is
      ``sqrt(re**2 + im**2)`` and ``sqrt`` of a real, both by exact integer square root (``fixed.sqrt_round``:
      correctly rounded, no double rounding; a negative operand of ``sqrt`` raises ``FixedPointError``);
    * ``sign``: -1, 0 or 1 converted to ``out``;
    * ``angle``: integer CORDIC (``fixed.cordic_angle``, ``iterations`` micro-rotations) straight to ``out``;
    * ``exp log10``: refused with ``UnsupportedFixedOp`` (see ``FIXED_UNSUPPORTED``).

    Returns:
        Raw integers of ``out``; a ``(re, im)`` pair when the expression is complex.

    Raises:
        UnsupportedFixedOp: the expression uses an op listed in ``FIXED_UNSUPPORTED``.
        FixedPointError: input count/type mismatch, or an intermediate over 62 bits.
    """
    for node in walk(params.expr):
        if node[0] in FIXED_UNSUPPORTED:
            raise UnsupportedFixedOp(node[0], FIXED_UNSUPPORTED[node[0]])
    if len(xs) != len(types) or len(xs) != arity(params.expr):
        raise FixedPointError(f"map reads {arity(params.expr)} inputs; got {len(xs)} signals, {len(types)} types")
    values: list[_Value] = []
    for x, t in zip(xs, types, strict=True):
        re, im = (ints(x[0]), ints(x[1])) if isinstance(x, tuple) else (ints(x), None)
        values.append((re.reshape(-1), None if im is None else im.reshape(-1), t.frac))
    ctx = _Fimath(values[0][0].size if values else 0, out, rounding, overflow, iterations)
    re, im, _ = _fixed_eval(params.expr, values, ctx)
    return re if im is None else (re, im)


@dataclass(frozen=True, slots=True)
class _Fimath:
    n: int  # samples (constants are broadcast to this length)
    out: FixedType
    rounding: Rounding
    overflow: Overflow
    iterations: int


def _fixed_eval(expr: Expr, args: list[_Value], ctx: _Fimath) -> _Value:
    head = expr[0]
    n, out, rnd, ovf = ctx.n, ctx.out, ctx.rounding, ctx.overflow
    if head == "in":
        return args[expr[1]]
    if head == "const":
        c = complex(expr[1])
        re = np.full(n, quantize([c.real], out, Rounding.CONVERGENT, Overflow.SATURATE)[0], dtype=np.int64)
        im = np.full(n, quantize([c.imag], out, Rounding.CONVERGENT, Overflow.SATURATE)[0], dtype=np.int64)
        return re, (im if isinstance(expr[1], complex) else None), out.frac
    ops = [_fixed_eval(a, args, ctx) for a in expr[1:]]
    if head == "angle":
        z = cordic_angle(ops[0][0], _imag(ops[0]), out=out, rounding=rnd, overflow=ovf, iterations=ctx.iterations)
        return z, None, out.frac
    if head == "sqrt" or (head == "abs" and ops[0][1] is not None):
        a_re, a_im, f = ops[0]
        power, frac = (a_re, f) if a_im is None else (mul(a_re, a_re, "abs") + mul(a_im, a_im, "abs"), 2 * f)
        return overflow_raw(sqrt_round(power, frac, out.frac, rnd), out, ovf), None, out.frac
    e_re, e_im, e_frac = _exact(head, ops)
    q_im = None if e_im is None else requantize(e_im, e_frac, out, rnd, ovf)
    return requantize(e_re, e_frac, out, rnd, ovf), q_im, out.frac


def _imag(v: _Value) -> IntArray:
    return v[1] if v[1] is not None else np.zeros_like(v[0])


def _align(ops: list[_Value]) -> tuple[list[_Value], int]:
    """The operands at their largest fraction length (exact left shifts)."""
    f = max(o[2] for o in ops)
    moved = [
        (shift_round(re, o - f, Rounding.FLOOR), None if im is None else shift_round(im, o - f, Rounding.FLOOR), f)
        for re, im, o in ops
    ]
    return moved, f


def _exact(head: str, ops: list[_Value]) -> tuple[IntArray, IntArray | None, int]:
    """The exact value of a linear or piecewise-linear op (before conversion to ``out``)."""
    if head == "mul":
        (ar, ai, fa), (br, bi, fb) = ops
        if ai is None and bi is None:
            return mul(ar, br), None, fa + fb
        ai_, bi_ = _imag(ops[0]), _imag(ops[1])
        if ai is None or bi is None:  # real times complex: no cross terms to add
            return mul(ar, br), (mul(ar, bi_) if ai is None else mul(ai_, br)), fa + fb
        return mul(ar, br) - mul(ai_, bi_), mul(ar, bi_) + mul(ai_, br), fa + fb
    if head in ("add", "sub", "maximum", "minimum", "clip"):
        (aligned, f) = _align(ops)
        complex_ = any(o[1] is not None for o in aligned)
        parts = [[o[0] for o in aligned], [_imag(o) for o in aligned] if complex_ else None]
        fn: dict[str, Callable[..., IntArray]] = {
            "add": np.add, "sub": np.subtract, "maximum": np.maximum, "minimum": np.minimum,
            "clip": lambda x, lo, hi: np.minimum(np.maximum(x, lo), hi),
        }  # fmt: skip
        res = [None if p is None else np.asarray(fn[head](*p), dtype=np.int64) for p in parts]
        assert res[0] is not None
        return res[0], res[1], f
    re, im, f = ops[0]
    unary: dict[str, Callable[[], tuple[IntArray, IntArray | None, int]]] = {
        "neg": lambda: (-re, None if im is None else -im, f),
        "conj": lambda: (re, None if im is None else -im, f),
        "abs": lambda: (np.abs(re), None, f),  # a real operand (complex abs is a square root)
        "sign": lambda: (np.sign(re).astype(np.int64), None, 0),
        "real": lambda: (re, None, f),
        "imag": lambda: (_imag(ops[0]), None, f),
    }
    if head in unary:
        return unary[head]()
    raise UnsupportedFixedOp(head, "no fixed-point rule")  # pragma: no cover - every OPS entry is handled above
