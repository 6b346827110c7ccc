"""Elementwise map block: ``y[k] = f(x0[k], x1[k], ...)`` for a small expression tree ``f``.

An expression is a nested tuple: ``("in", i)`` reads input ``i``, ``("const", v)`` is a real constant, and
``(op, *args)`` applies an operation from ``OPS``. The frontend makes one-operation maps; the
``fuse_elementwise`` pass composes chains of them into one tree, so generated code runs one loop per chain.

Rate rule: every input has the same stream type (dtype, samples per frame, rate), which the output keeps; inputs
are real float streams (complex operations come with complex streams). Every input index below the arity is
used, constants are finite and a tree has at most ``MAX_EXPR_NODES`` nodes. Maps are stateless, so frame-by-frame
equals whole-signal trivially.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.types import StreamType

FloatArray = npt.NDArray[np.float64]
Expr = tuple[Any, ...]

MAX_EXPR_NODES = 256  # a fused chain longer than this stays split (keeps generated lines and recursion small)


def _clip(x: FloatArray, lo: FloatArray, hi: FloatArray) -> FloatArray:
    return np.minimum(np.maximum(x, lo), hi)  # what np.clip does for lo <= hi, NaN-propagating


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
}


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
        if len(expr) != 2 or not isinstance(expr[1], float) or not math.isfinite(expr[1]):
            raise RuleError(f"map constants must be finite floats, got {expr[1:]!r}")
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
    if first.dtype.is_complex or not first.dtype.is_float:
        raise RuleError(f"elementwise operations need real float streams, got {first.dtype}")
    for other in inputs[1:]:
        if other != first:
            raise RuleError(f"elementwise operands differ in type or rate: {first} vs {other}")
    return first


def evaluate(expr: Expr, args: Sequence[FloatArray]) -> FloatArray:
    """The float64 value of ``expr`` on whole input arrays (IEEE semantics: log10(0) = -inf, no exceptions)."""
    head = expr[0]
    if head == "in":
        return np.asarray(args[expr[1]], dtype=np.float64)
    if head == "const":
        return np.full(len(args[0]) if args else 0, expr[1])
    with np.errstate(all="ignore"):
        return np.asarray(OPS[head][1](*(evaluate(a, args) for a in expr[1:])), dtype=np.float64)


def reference(params: MapParams, *xs: npt.ArrayLike) -> FloatArray:
    """Float64 golden model for whole signals."""
    return evaluate(params.expr, [np.asarray(x, dtype=np.float64) for x in xs])


class Streamer:
    """Frame-by-frame map (stateless)."""

    def __init__(self, params: MapParams) -> None:
        self._params = params

    def reset(self) -> None:
        """Nothing to reset."""

    def process(self, *frames: npt.ArrayLike) -> FloatArray:
        """Map one frame of each input."""
        return reference(self._params, *frames)
