"""Frame operations in the Python frontend: ``np.fft.*``, reductions and constant arrays of the frame length.

Invariants:
    * A frame operation applies to the CURRENT FRAME of the stream it is given (``blocks.frame_ops``): the
      frame length is that stream's samples per frame (the request's frame length, divided by any decimation
      before it). Nothing is carried from one frame to the next.
    * Only the default transform length is accepted: ``n=`` (or a second positional argument) must equal it
      (``irfft``: ``2 * (bins - 1)``); ``axis``, ``axes``, ``norm`` and every other keyword are refused with the
      call's location, as is a transform of a constant (there is nothing to stream).
    * Reductions (``np.sum/mean/max/argmax``) of constants fold to constants (``taps / np.sum(taps)``); of a
      stream they give one value per frame.
    * A constant array combined with a stream (``x * np.hanning(N)``) must hold exactly the stream's samples per
      frame; otherwise ``InvalidInput`` at the expression, pointing at ``/frame_length``.
    * A frame operation on a variable-length stream (``types.StreamType``: the frame length is not a multiple of a
      decimation before it) is refused with ``InvalidInput`` at the call, pointing at ``/frame_length`` and naming
      the multiple that works.
"""

from __future__ import annotations

import ast
from typing import Any

import numpy as np

from sigforge.dsp.blocks import RuleError, frame_ops
from sigforge.dsp.blocks.frame_ops import FrameParams
from sigforge.dsp.frontends._consts import Func, Module, fail, is_number, loc, short
from sigforge.dsp.frontends._streams import Builder, Sig
from sigforge.dsp.ir import Op
from sigforge.errors import InvalidInput

FFT_CALLS = {f"numpy.fft.{k}": k for k in ("fft", "ifft", "rfft", "irfft", "fftshift", "ifftshift")}
REDUCTION_CALLS = {"numpy.sum": "sum", "numpy.mean": "mean", "numpy.max": "max", "numpy.amax": "max",
                   "numpy.argmax": "argmax"}  # fmt: skip
FRAME_CALLS = (*FFT_CALLS, *REDUCTION_CALLS)
_OPS = {ast.Mult: "mul", ast.Add: "add", ast.Sub: "sub", ast.Div: "div"}
SUPPORTED_FRAME = (
    "frame operations on the current frame of a stream: np.fft.fft/ifft/rfft/irfft/fftshift/ifftshift(sig), "
    "np.sum/mean/max/argmax(sig), sig + - * / constant array of the frame length (e.g. x * np.hanning(N))"
)


def _fixed_frames(b: Builder, at: ast.AST, sig: Sig) -> None:
    """Refuse a frame operation on a variable-length stream (a decimation the frame length is not a multiple of)."""
    stream = b.stream(sig)
    if stream.variable:
        raise InvalidInput(
            f"`{short(at)}` is a frame operation and needs frames of a fixed length, but the frame length given "
            f"brings it {stream.describe_count()} samples per frame (a decimation or upfirdn before it does not "
            f"divide the frame length); choose a frame length that is a multiple of {stream.frame_multiple}",
            location=loc(at),
            pointer="/frame_length",
        )


def _node(b: Builder, at: ast.AST, params: FrameParams, sig: Sig) -> Sig:
    _fixed_frames(b, at, sig)
    try:
        out = frame_ops.infer(params, [b.stream(sig)])
    except RuleError as exc:
        raise fail(at, f"`{short(at)}`: {exc}") from None
    return b.add(Op.FRAME, params, (sig.node_id,), out, at)


def call(b: Builder, node: ast.Call, func: Func, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """``np.fft.rfft(sig)``, ``np.argmax(sig)`` ...: a frame node; a reduction of constants folds."""
    name = func.qualname.replace("numpy.", "np.")
    kind = FFT_CALLS.get(func.qualname) or REDUCTION_CALLS[func.qualname]
    if any(isinstance(a, (Module, Func)) for a in [*args, *kwargs.values()]):
        raise fail(node, f"{name} takes a signal, not a function or module")
    if not args:
        raise fail(node, f"{name} needs a signal argument")
    sig = args[0]
    if not isinstance(sig, Sig):
        if kind in frame_ops.REDUCTIONS:
            return _fold(node, name, kind, args, kwargs)
        raise fail(node, f"{name} of a constant is not supported: frame operations apply to the current frame "
                         "of a signal computed from the entry function's parameter")  # fmt: skip
    extra = {k: v for k, v in kwargs.items() if k != "n"}
    if extra or len(args) > 2 or (len(args) == 2 and "n" in kwargs):
        keys = ", ".join([*(f"{k}=" for k in extra), *(["a second positional argument"] if len(args) > 1 else [])])
        raise fail(node, f"{name}: {keys or 'these arguments'} not supported; a frame operation applies to the "
                         "whole current frame (no axis=, axes=, norm= or other options)")  # fmt: skip
    stream = b.stream(sig)
    params = FrameParams(kind, stream.samples)
    n_given = args[1] if len(args) == 2 else kwargs.get("n")
    if n_given is not None:
        natural = 2 * (stream.samples - 1) if kind == "irfft" else stream.samples
        if kind not in ("fft", "ifft", "rfft", "irfft") or isinstance(n_given, bool) or n_given != natural:
            raise fail(node, f"{name}: n={n_given!r} is not supported; only the frame's own length ({natural}) "
                             "is (zero padding and truncation are not translated yet)")  # fmt: skip
    return _node(b, node, params, sig)


def _fold(node: ast.Call, name: str, kind: str, args: list[Any], kwargs: dict[str, Any]) -> Any:
    if len(args) != 1 or kwargs:
        raise fail(node, f"{name} of a constant takes one array and no keywords here")
    value = args[0]
    if not (is_number(value) or isinstance(value, (tuple, np.ndarray))):
        raise fail(node, f"{name} takes numbers or arrays")
    try:
        arr = np.asarray(value, dtype=np.complex128 if np.iscomplexobj(value) else np.float64)
    except (TypeError, ValueError):
        raise fail(node, f"{name}: the argument is not an array of numbers") from None
    if arr.size == 0:
        raise fail(node, f"{name} of an empty array")
    if kind in ("max", "argmax") and np.iscomplexobj(arr):
        raise fail(node, f"{name} of complex numbers is not supported")
    result = getattr(np, kind)(arr)
    return result.item() if isinstance(result, np.generic) else result


def const_array(b: Builder, node: ast.BinOp, left: Any, right: Any) -> Sig | None:
    """``sig * array``, ``array - sig`` ...: a ``const`` frame node; None when no operand is a constant array."""
    arr_left = isinstance(left, (tuple, np.ndarray))
    if not (arr_left or isinstance(right, (tuple, np.ndarray))):
        return None
    sig, arr = (right, left) if arr_left else (left, right)
    if not isinstance(sig, Sig):
        return None
    op = _OPS.get(type(node.op))
    if op is None or (op == "div" and arr_left):
        raise fail(node, f"`{short(node)}`: only sig + - * constant array, array + - * sig and sig / array are "
                         "supported between a signal and a constant array")  # fmt: skip
    try:
        if np.iscomplexobj(arr):
            raise TypeError("complex")
        values = np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError):
        raise fail(node, f"`{short(node)}`: the constant array must hold real numbers (complex arrays are not "
                         "supported yet)") from None  # fmt: skip
    _fixed_frames(b, node, sig)
    stream = b.stream(sig)
    if values.ndim != 1:
        raise fail(node, f"`{short(node)}`: a constant array combined with a signal must be 1-D (one value per "
                         f"sample of the frame), got shape {values.shape}")  # fmt: skip
    if values.size != stream.samples:
        raise InvalidInput(
            f"`{short(node)}` combines a signal of {stream.samples} samples per frame with a constant array of "
            f"shape {values.shape}; a constant array must have exactly the frame length (the request's frame "
            "length, divided by any decimation before it): choose the frame length to match or resize the array",
            location=loc(node),
            pointer="/frame_length",
        )
    if not np.all(np.isfinite(values)):
        raise fail(node, f"`{short(node)}`: the constant array holds a non-finite value")
    if op == "div" and np.any(values == 0):
        raise fail(node, f"`{short(node)}`: division by a constant array that holds 0")
    if op == "sub" and arr_left:
        op = "rsub"
    params = FrameParams("const", stream.samples, op, tuple(float(v) for v in values))
    return _node(b, node, params, sig)
