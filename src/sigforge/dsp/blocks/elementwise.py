"""Elementwise map block: ``y[k] = f(x0[k], x1[k], ...)`` for a small expression tree ``f``.

An expression is a nested tuple: ``("in", i)`` reads input ``i``, ``("const", v)`` is a finite real (``float``)
or complex (``complex``) constant, and ``(op, *args)`` applies an operation from ``OPS``. The frontend makes
one-operation maps; the ``fuse_elementwise`` pass composes chains of them into one tree, so generated code runs
one loop per chain.

Rate rule: every input has the same samples per frame and rate, and the same precision (float32/complex64 or
float64/complex128); inputs may be real or complex. Every input index below the arity is used, constants are
finite and a tree has at most ``MAX_EXPR_NODES`` nodes. Maps are stateless, so frame-by-frame equals whole-signal
trivially.

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
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.types import DType, StreamType

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
        if (other.samples, other.rate) != (first.samples, first.rate) or precision(other.dtype) != precision(
            first.dtype
        ):
            raise RuleError(f"elementwise operands differ in precision or rate: {first} vs {other}")
    kinds = [s.dtype.is_complex for s in inputs]
    return StreamType(with_kind(first.dtype, expr_is_complex(params.expr, kinds)), first.samples, first.rate)


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
