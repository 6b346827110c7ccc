"""Streaming calls and operators of the Python frontend: how signal expressions become IR nodes.

Invariants:
    * Every node is added through ``Builder.add`` with the AST node it came from, so its ``SourceLocation`` (and
      the generated code's ``[src:N]`` marker) points at the user's construct.
    * Coefficients are constants folded before any node is built; an IIR design is checked for stability here,
      at the call, so the error names the call and the pole magnitude rather than an IR node.
    * Elementwise operations on signals become one-operation ``map`` nodes (``passes.fuse_elementwise`` joins
      chains later); the same numpy calls on constants fold to constants, checked finite.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sigforge.dsp.blocks import iir
from sigforge.dsp.blocks.elementwise import Expr, MapParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.frontends._consts import Func, Module, as_taps, fail, is_number, loc, short
from sigforge.dsp.ir import Node, Op, Params
from sigforge.dsp.types import StreamType

_UNARY = {"numpy.abs": "abs", "numpy.sqrt": "sqrt", "numpy.exp": "exp", "numpy.log10": "log10", "numpy.sign": "sign"}
_BINARY = {"numpy.maximum": "maximum", "numpy.minimum": "minimum"}
_OPERATORS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul"}


@dataclass(frozen=True, slots=True)
class Sig:
    """A signal value during translation: the id of the IR node producing it."""

    node_id: str


@dataclass
class Builder:
    """Accumulates IR nodes while the entry function is walked."""

    name: str
    nodes: list[Node] = field(default_factory=list)

    def add(self, op: Op, params: Params, inputs: tuple[str, ...], out: StreamType, at: ast.AST) -> Sig:
        node = Node(f"n{len(self.nodes)}", op, params, inputs, out, loc(at))
        self.nodes.append(node)
        return Sig(node.id)

    def stream(self, sig: Sig) -> StreamType:
        return next(n.out for n in self.nodes if n.id == sig.node_id)


def _bind(node: ast.Call, name: str, names: tuple[str, ...], args: list[Any], kwargs: dict[str, Any]) -> list[Any]:
    if len(args) > len(names) or set(kwargs) - set(names[len(args) :]):
        raise fail(node, f"{name} takes ({', '.join(names)}) only; axis=, zi= and other keywords are not supported")
    bound = dict(zip(names, args, strict=False)) | kwargs
    if set(bound) != set(names):
        raise fail(node, f"{name} needs {', '.join(names)}")
    return [bound[n] for n in names]


def _is_one(a: Any) -> bool:
    if is_number(a):
        return bool(a == 1)
    if isinstance(a, (tuple, list)) and len(a) == 1:
        return is_number(a[0]) and a[0] == 1
    return isinstance(a, np.ndarray) and a.shape == (1,) and a[0] == 1


def _stable(node: ast.Call, params: iir.IirParams) -> iir.IirParams:
    radius = iir.max_pole_radius(params)
    if radius > 1.0 - iir.STABILITY_MARGIN:
        raise fail(
            node,
            f"unstable IIR filter: a pole has magnitude {radius:.9f}; every pole must lie strictly inside the "
            "unit circle (|p| < 1). Check the design, or use sosfilt with output='sos'",
        )
    return params


def lfilter(b: Builder, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Sig:
    """``lfilter(b, a, x)``: an FIR node when ``a`` is 1, else an IIR node (normalised by ``a[0]``)."""
    num, den, x = _bind(node, "lfilter", ("b", "a", "x"), args, kwargs)
    if isinstance(num, Sig) or isinstance(den, Sig) or not isinstance(x, Sig):
        raise fail(node, "lfilter(b, a, x) needs constant coefficients b and a and a signal x")
    taps = as_taps(node, num, "lfilter coefficients b")
    if _is_one(den):
        return b.add(Op.FIR, FirParams(tuple(float(t) for t in taps)), (x.node_id,), b.stream(x), node)
    a = as_taps(node, den, "lfilter coefficients a")
    _real_stream(b, node, x, "lfilter")
    try:
        params = iir.from_ba(taps, a)
    except ValueError as exc:
        raise fail(node, f"lfilter: {exc}") from None
    return b.add(Op.IIR, _stable(node, params), (x.node_id,), b.stream(x), node)


def sosfilt(b: Builder, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Sig:
    """``sosfilt(sos, x)``: an IIR node of biquad sections."""
    sos, x = _bind(node, "sosfilt", ("sos", "x"), args, kwargs)
    if not isinstance(x, Sig) or not isinstance(sos, (np.ndarray, tuple)):
        raise fail(node, "sosfilt(sos, x) needs a constant (n, 6) array sos (e.g. butter(..., output='sos')) "
                         "and a signal x")  # fmt: skip
    try:
        arr = np.asarray(sos, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(node, "sosfilt: sos must be an (n, 6) array of real numbers") from None
    if not np.all(np.isfinite(arr)):
        raise fail(node, "sosfilt: sos contains a non-finite value")
    _real_stream(b, node, x, "sosfilt")
    try:
        params = iir.from_sos(arr)
    except ValueError as exc:
        raise fail(node, f"sosfilt: {exc}") from None
    return b.add(Op.IIR, _stable(node, params), (x.node_id,), b.stream(x), node)


def _real_stream(b: Builder, node: ast.AST, x: Sig, what: str) -> None:
    dtype = b.stream(x).dtype
    if dtype.is_complex or not dtype.is_float:
        raise fail(node, f"{what} on a {dtype} stream is not supported yet; real float32/float64 streams only")


def _operand(node: ast.AST, value: Any) -> Sig | Expr:
    if isinstance(value, Sig):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(node, f"elementwise operations combine signals with real scalar constants only, not {short(node)}")
    return ("const", float(value))


def elementwise(b: Builder, node: ast.AST, op: str, operands: list[Any]) -> Sig:
    """A one-operation map node over signals and scalar constants (at least one operand is a signal)."""
    inputs: list[str] = []
    args: list[Expr] = []
    for value in operands:
        item = _operand(node, value)
        if isinstance(item, Sig):
            _real_stream(b, node, item, op)
            if item.node_id not in inputs:
                inputs.append(item.node_id)
            args.append(("in", inputs.index(item.node_id)))
        else:
            args.append(item)
    streams = [b.stream(Sig(i)) for i in inputs]
    for other in streams[1:]:
        if other != streams[0]:
            raise fail(
                node,
                f"`{short(node)}` combines signals of different rates or frame sizes "
                f"({streams[0].samples} vs {other.samples} samples per frame); decimate both alike",
            )
    return b.add(Op.MAP, MapParams((op, *args)), tuple(inputs), streams[0], node)


def binop(b: Builder, node: ast.BinOp, left: Any, right: Any) -> Sig | None:
    """``sig + sig``, ``sig - c``, ``c * sig`` ... as a map; None when the operator is not elementwise here."""
    op = _OPERATORS.get(type(node.op))
    if op is None:
        return None
    return elementwise(b, node, op, [left, right])


def numpy_call(b: Builder, node: ast.Call, func: Func, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``np.abs(sig)``, ``np.clip(sig, lo, hi)``, ``np.maximum(sig, c)`` ...; on constants, the folded value."""
    qual = func.qualname
    name = qual.replace("numpy.", "np.")
    if qual in ("numpy.real", "numpy.imag", "numpy.conj", "numpy.conjugate", "numpy.angle"):
        raise fail(node, f"{name} needs complex streams, which are not supported yet; inputs are real "
                         "(float32/float64), so drop the call or use np.abs")  # fmt: skip
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
    if op == "clip" and not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in args[1:]):
        raise fail(node, "np.clip bounds must be real constants (None is not supported)")
    return elementwise(b, node, op, args)


def _fold(node: ast.Call, name: str, qual: str, args: list[Any]) -> Any:
    if not all(is_number(a) or isinstance(a, np.ndarray) for a in args):
        raise fail(node, f"{name} on constants takes numbers or arrays")
    fn = getattr(np, qual.split(".")[1])
    with np.errstate(all="ignore"):
        value = fn(*args)
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or not np.all(np.isfinite(arr)):
        raise fail(node, f"{short(node)} does not fold to finite real numbers")
    return value.item() if isinstance(value, np.generic) else value
