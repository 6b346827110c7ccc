"""Elementwise signal expressions of the Python frontend: operators, numpy calls, gains and the FM discriminator.

Invariants:
    * Every node is added through ``Builder.add`` with the AST node it came from (its ``SourceLocation``).
    * Type rules are ``blocks.elementwise``'s (NumPy's): a real operand of ``+ - *`` with a complex one is promoted
      to complex; ``np.abs/real/imag/angle`` of a complex stream are real of the same precision (complex64 ->
      float32); ``np.sqrt/exp/log10/sign/clip/maximum/minimum`` take real streams only and are refused on complex
      ones with the call's location, before any node is built.
    * A real constant factor becomes a ``gain`` node (which ``passes.fold_gains`` can push into FIR taps); a
      complex constant (``1j``, ``np.exp(1j * 0.3)``) becomes a one-operation ``map``.
    * Slicing is decimation ``sig[::M]`` only, except for the FM discriminator ``np.angle(A[1:] * np.conj(A[:-1]))``
      (either operand order, the same expression ``A`` twice), which becomes ``angle(A * conj(delay(A)))``: output
      ``n`` is ``angle(A[n] * conj(A[n-1]))`` with ``A[-1] = 0``, so output 0 is ``angle(0) = 0`` and the output
      has the input's length; ``out[1:]`` equals NumPy's expression on the whole signal.
    * ``sig ** 2`` is ``sig * sig`` (NumPy squares by multiplying too); other powers of signals are refused.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from typing import Any

import numpy as np

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks import elementwise as ew
from sigforge.dsp.blocks.delay import DelayParams
from sigforge.dsp.blocks.elementwise import Expr, MapParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.frontends._consts import Func, Module, fail, is_number, short
from sigforge.dsp.frontends._streams import Builder, Sig
from sigforge.dsp.ir import Op

_UNARY = {"numpy.abs": "abs", "numpy.sqrt": "sqrt", "numpy.exp": "exp", "numpy.log10": "log10", "numpy.sign": "sign",
          "numpy.real": "real", "numpy.imag": "imag", "numpy.conj": "conj", "numpy.conjugate": "conj",
          "numpy.angle": "angle"}  # fmt: skip
_BINARY = {"numpy.maximum": "maximum", "numpy.minimum": "minimum"}
_OPERATORS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}
COMPLEX_SUPPORT = (
    "complex streams support + - * (with streams or constants, real or complex), np.real, np.imag, np.conj, "
    "np.abs, np.angle, lfilter/sosfilt with real coefficients, x[::M] and the FM discriminator "
    "np.angle(x[1:] * np.conj(x[:-1]))"
)


def _real_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def gain(b: Builder, at: ast.AST, sig: Sig, factor: Any) -> Sig:
    """``factor * sig`` for a real constant (a gain node) or a complex one (a map)."""
    if _real_number(factor):
        return b.add(Op.GAIN, GainParams(float(factor)), (sig.node_id,), b.stream(sig), at)
    if isinstance(factor, complex):
        return elementwise(b, at, "mul", [sig, factor])
    raise fail(at, f"a signal can only be scaled by a constant number, not {short(at)}")


def _operand(node: ast.AST, value: Any) -> Sig | Expr:
    if isinstance(value, Sig):
        return value
    if _real_number(value):
        return ("const", float(value))
    if isinstance(value, complex):
        return ("const", complex(value))
    raise fail(node, f"elementwise operations combine signals with scalar constants only, not {short(node)}")


def elementwise(b: Builder, node: ast.AST, op: str, operands: list[Any]) -> Sig:
    """A one-operation map node over signals and scalar constants (at least one operand is a signal)."""
    inputs: list[str] = []
    args: list[Expr] = []
    for value in operands:
        item = _operand(node, value)
        if isinstance(item, Sig):
            if not b.stream(item).dtype.is_float:
                raise fail(node, f"{op} on a {b.stream(item).dtype} stream is not supported")
            if item.node_id not in inputs:
                inputs.append(item.node_id)
            args.append(("in", inputs.index(item.node_id)))
        else:
            args.append(item)
    streams = [b.stream(Sig(i)) for i in inputs]
    for other in streams[1:]:
        first = streams[0]
        if (other.samples, other.rate, other.variable) != (first.samples, first.rate, first.variable) or (
            first.variable and other.counts != first.counts
        ):
            raise fail(
                node,
                f"`{short(node)}` combines signals of different rates or frame sizes "
                f"({first.describe_count()} vs {other.describe_count()} samples per frame); decimate both alike",
            )
    params = MapParams((op, *args))
    if op in ew.REAL_ONLY and any(isinstance(a, tuple) and a[0] == "const" and isinstance(a[1], complex) for a in args):
        raise fail(node, f"`{short(node)}`: {op} takes real constants only")
    if op in ew.REAL_ONLY and any(s.dtype.is_complex for s in streams):
        raise fail(node, f"`{short(node)}`: {op} of a complex stream is not supported; {COMPLEX_SUPPORT}. "
                         "Take np.abs, np.real or np.imag first")  # fmt: skip
    try:
        out = ew.infer(params, streams)
    except RuleError as exc:
        raise fail(node, f"`{short(node)}`: {exc}") from None
    return b.add(Op.MAP, params, tuple(inputs), out, node)


def binop(b: Builder, node: ast.BinOp, left: Any, right: Any) -> Sig | None:
    """``sig + sig``, ``sig - c``, ``c * sig``, ``sig / c`` ...; None when the operator is not elementwise here."""
    if isinstance(node.op, ast.Mult) and isinstance(left, Sig) != isinstance(right, Sig):
        sig, factor = (left, right) if isinstance(left, Sig) else (right, left)
        return gain(b, node, sig, factor)
    if isinstance(node.op, ast.Div) and isinstance(left, Sig) and not isinstance(right, Sig):
        if not is_number(right) or isinstance(right, bool):
            raise fail(node, f"a signal can only be divided by a constant number, not {short(node)}")
        if right == 0:
            raise fail(node, "division of a signal by zero")
        return gain(b, node, left, 1.0 / right)
    if isinstance(node.op, ast.Pow) and isinstance(left, Sig) and not isinstance(right, Sig):
        if not is_number(right) or isinstance(right, bool) or right not in (1, 2):
            raise fail(node, f"`{short(node)}`: only sig ** 2 (and sig ** 1) are supported; write other powers "
                             "as products")  # fmt: skip
        return left if right == 1 else elementwise(b, node, "mul", [left, left])
    op = _OPERATORS.get(type(node.op))
    if op is None:
        return None
    return elementwise(b, node, op, [left, right])


def numpy_call(b: Builder, node: ast.Call, func: Func, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``np.abs(sig)``, ``np.clip(sig, lo, hi)``, ``np.angle(sig)`` ...; on constants, the folded value."""
    qual = func.qualname
    name = qual.replace("numpy.", "np.")
    if kwargs:
        raise fail(node, f"{name} keywords ({', '.join(kwargs)}) are not supported; pass arguments by position")
    want = 1 if qual in _UNARY else 3 if qual == "numpy.clip" else 2
    if len(args) != want:
        raise fail(node, f"{name} takes {want} argument(s) here, got {len(args)}")
    if any(isinstance(a, (Module, Func)) for a in args):
        raise fail(node, f"{name} takes signals and numbers, not functions or modules")
    if not any(isinstance(a, Sig) for a in args):
        return _fold(node, name, qual, args)
    op = _UNARY.get(qual) or _BINARY.get(qual) or "clip"
    if op == "clip" and not isinstance(args[0], Sig):
        raise fail(node, "np.clip(sig, lo, hi) clips a signal between two constants")
    if op == "clip" and not all(_real_number(v) for v in args[1:]):
        raise fail(node, "np.clip bounds must be real constants (None is not supported)")
    return elementwise(b, node, op, args)


def _fold(node: ast.Call, name: str, qual: str, args: list[Any]) -> Any:
    if not all(is_number(a) or isinstance(a, np.ndarray) for a in args):
        raise fail(node, f"{name} on constants takes numbers or arrays")
    fn = getattr(np, qual.split(".")[1])
    with np.errstate(all="ignore"):
        value = fn(*args)
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiuc" or not np.all(np.isfinite(arr)):
        raise fail(node, f"{short(node)} does not fold to finite numbers")
    return value.item() if isinstance(value, np.generic) else value


def _slice_of(node: ast.expr, lower: int | None, upper: int | None) -> ast.expr | None:
    """``A`` when ``node`` is ``A[lower:upper]`` (no step), else None."""
    if not isinstance(node, ast.Subscript) or not isinstance(node.slice, ast.Slice) or node.slice.step is not None:
        return None

    def is_int(e: ast.expr | None, want: int | None) -> bool:
        if want is None:
            return e is None
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub) and isinstance(e.operand, ast.Constant):
            return e.operand.value == -want
        return isinstance(e, ast.Constant) and e.value == want

    return node.value if is_int(node.slice.lower, lower) and is_int(node.slice.upper, upper) else None


def _is_conj(node: ast.expr) -> ast.expr | None:
    """The argument of ``np.conj(arg)`` / ``np.conjugate(arg)`` (by spelling; checked again when evaluated)."""
    if isinstance(node, ast.Call) and len(node.args) == 1 and not node.keywords:
        f = node.func
        fname = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
        if fname in ("conj", "conjugate"):
            return node.args[0]
    return None


def discriminator(b: Builder, node: ast.Call, ev: Callable[[ast.expr], Any], conj: Callable[[ast.expr], bool]) -> Any:
    """The FM discriminator ``np.angle(A[1:] * np.conj(A[:-1]))`` (see the module docstring), else None.

    Args:
        b: the graph builder.
        node: the ``np.angle(...)`` call.
        ev: evaluates an expression in the translator's scope.
        conj: whether a call's function names ``numpy.conj``/``numpy.conjugate`` in that scope.
    """
    if len(node.args) != 1 or node.keywords:
        return None
    prod = node.args[0]
    if not isinstance(prod, ast.BinOp) or not isinstance(prod.op, ast.Mult):
        return None
    for now_e, past_e in ((prod.left, prod.right), (prod.right, prod.left)):
        inner = _is_conj(past_e)
        if inner is None or not isinstance(past_e, ast.Call) or not conj(past_e.func):
            continue
        cur, prev = _slice_of(now_e, 1, None), _slice_of(inner, None, -1)
        if cur is None or prev is None:
            continue
        if ast.dump(cur) != ast.dump(prev):
            raise fail(node, "the FM discriminator np.angle(x[1:] * np.conj(x[:-1])) needs the same signal "
                             f"expression on both sides, got `{short(cur)}` and `{short(prev)}`")  # fmt: skip
        sig = ev(cur)
        if not isinstance(sig, Sig):
            return None  # constants: fold as ordinary numpy
        stream = b.stream(sig)
        delayed = b.add(Op.DELAY, DelayParams(1), (sig.node_id,), stream, past_e)
        expr = ("angle", ("mul", ("in", 0), ("conj", ("in", 1))))
        out = ew.infer(MapParams(expr), [stream, stream])
        return b.add(Op.MAP, MapParams(expr), (sig.node_id, delayed.node_id), out, node)
    return None
