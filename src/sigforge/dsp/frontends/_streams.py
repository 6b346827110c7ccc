"""Streaming calls and operators of the Python frontend: how signal expressions become IR nodes.

Invariants:
    * Every node is added through ``Builder.add`` with the AST node it came from, so its ``SourceLocation`` (and
      the generated code's ``[src:N]`` marker) points at the user's construct.
    * Coefficients are constants folded before any node is built; an IIR design is checked for stability here,
      at the call, so the error names the call and the pole magnitude rather than an IR node.
    * Filters take real coefficients and float or complex streams (a complex stream is filtered as its real and
      imaginary parts). Elementwise operations live in ``_elementwise``.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sigforge.dsp.blocks import RuleError, iir
from sigforge.dsp.blocks import upfirdn as upfirdn_block
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.upfirdn import MAX_FACTOR, UpfirdnParams
from sigforge.dsp.frontends._consts import as_taps, fail, is_number, loc, short
from sigforge.dsp.ir import Node, Op, Params
from sigforge.dsp.types import StreamType


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


def _bind(
    node: ast.Call,
    name: str,
    names: tuple[str, ...],
    args: list[Any],
    kwargs: dict[str, Any],
    *,
    defaults: dict[str, Any] | None = None,
) -> list[Any]:
    if len(args) > len(names) or set(kwargs) - set(names[len(args) :]):
        raise fail(node, f"{name} takes ({', '.join(names)}) only; axis=, zi= and other keywords are not supported")
    bound = (defaults or {}) | dict(zip(names, args, strict=False)) | kwargs
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
    if not dtype.is_float:
        raise fail(node, f"{what} on a {dtype} stream is not supported; float or complex streams only")


def upfirdn(b: Builder, node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> Sig:
    """``upfirdn(h, x, up=1, down=1)``: a polyphase resampler node (streaming semantics: ``blocks.upfirdn``)."""
    h, x, up, down = _bind(node, "upfirdn", ("h", "x", "up", "down"), args, kwargs, defaults={"up": 1, "down": 1})
    if isinstance(h, Sig) or not isinstance(x, Sig):
        raise fail(node, "upfirdn(h, x, up, down) needs constant taps h and a signal x")
    taps = as_taps(node, h, "upfirdn taps h")
    for what, factor in (("up", up), ("down", down)):
        if isinstance(factor, (Sig, bool)) or not isinstance(factor, int):
            raise fail(node, f"upfirdn {what} must fold to a constant integer 1..{MAX_FACTOR}, got "
                             f"{'a signal' if isinstance(factor, Sig) else repr(factor)}")  # fmt: skip
        if not 1 <= factor <= MAX_FACTOR:
            raise fail(node, f"upfirdn {what} must be 1..{MAX_FACTOR}, got {factor}")
    src = b.stream(x)
    if not src.dtype.is_float:
        raise fail(node, f"upfirdn on a {src.dtype} stream is not supported; float or complex streams only")
    params = UpfirdnParams(tuple(float(t) for t in taps), up, down)
    try:
        out = upfirdn_block.infer(params, [src])
    except RuleError as exc:
        raise fail(node, f"`{short(node)}`: {exc}") from None
    return b.add(Op.UPFIRDN, params, (x.node_id,), out, node)
