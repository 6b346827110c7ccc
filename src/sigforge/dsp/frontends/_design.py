"""The allow-listed design-time calls: SciPy/NumPy filter and window design on folded constants.

Invariants:
    * Only the functions in ``DESIGN_CALLS`` are ever called, only with plain constants (numbers, strings, bools,
      tuples of them, arrays of at most ``MAX_TAPS`` entries) and only with the keywords listed per function.
    * Every size argument is checked against a module limit BEFORE the call, so a request cannot make the
      translator allocate gigabytes or iterate for minutes: lengths <= ``MAX_TAPS``, IIR orders <=
      ``MAX_DESIGN_ORDER``, remez <= ``MAX_REMEZ_TAPS`` taps with bounded grid density and iterations.
    * Analog designs and ``output="zpk"`` are refused: only digital ``ba``/``sos`` can be streamed.
    * Results are checked finite and returned as float64 arrays (ba: a tuple ``(b, a)``; sos: shape (n, 6)) or
      Python numbers; every failure is an ``InvalidAlgorithm`` at the call.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import signal

from sigforge.dsp.blocks.fir import MAX_TAPS
from sigforge.dsp.frontends._consts import STREAM_CALLS, Func, fail

MAX_DESIGN_ORDER = 32  # butter & co.; band designs double it, still within blocks.iir.MAX_ORDER
MAX_REMEZ_TAPS = 1024  # remez iterates over a grid of grid_density * numtaps points
MAX_GRID_DENSITY = 64
MAX_REMEZ_ITER = 100
MAX_FIRWIN2_POINTS = 1 << 16  # nfreqs: the FFT size firwin2 interpolates on
MAX_ARRAY = 1 << 16  # elements of any constant array argument (2-D sos arrays included)


@dataclass(frozen=True, slots=True)
class _Spec:
    """One design function: its callable, parameter names (positional order) and the size checks."""

    fn: Callable[..., Any]
    params: tuple[str, ...]
    required: int
    lengths: tuple[str, ...] = ()  # integer arguments that size the result: 1..MAX_TAPS
    orders: tuple[str, ...] = ()  # integer IIR orders: 1..MAX_DESIGN_ORDER
    iir: bool = False  # has analog= and output= that must be digital ba/sos


_IIR = ("btype", "analog", "output", "fs")
_SPECS: dict[str, _Spec] = {
    "scipy.signal.firwin": _Spec(signal.firwin, ("numtaps", "cutoff", "width", "window", "pass_zero", "scale",
                                                 "fs"), 2, lengths=("numtaps",)),
    "scipy.signal.firwin2": _Spec(signal.firwin2, ("numtaps", "freq", "gain", "nfreqs", "window", "antisymmetric",
                                                   "fs"), 3, lengths=("numtaps",)),
    "scipy.signal.remez": _Spec(signal.remez, ("numtaps", "bands", "desired", "weight", "type", "maxiter",
                                               "grid_density", "fs"), 3),
    "scipy.signal.kaiserord": _Spec(signal.kaiserord, ("ripple", "width"), 2),
    "scipy.signal.kaiser_beta": _Spec(signal.kaiser_beta, ("a",), 1),
    "scipy.signal.butter": _Spec(signal.butter, ("N", "Wn", *_IIR), 2, orders=("N",), iir=True),
    "scipy.signal.cheby1": _Spec(signal.cheby1, ("N", "rp", "Wn", *_IIR), 3, orders=("N",), iir=True),
    "scipy.signal.cheby2": _Spec(signal.cheby2, ("N", "rs", "Wn", *_IIR), 3, orders=("N",), iir=True),
    "scipy.signal.ellip": _Spec(signal.ellip, ("N", "rp", "rs", "Wn", *_IIR), 4, orders=("N",), iir=True),
    "scipy.signal.bessel": _Spec(signal.bessel, ("N", "Wn", "btype", "analog", "output", "norm", "fs"), 2,
                                 orders=("N",), iir=True),
    "scipy.signal.iirnotch": _Spec(signal.iirnotch, ("w0", "Q", "fs"), 2),
    "scipy.signal.iirpeak": _Spec(signal.iirpeak, ("w0", "Q", "fs"), 2),
    "scipy.signal.get_window": _Spec(signal.get_window, ("window", "Nx", "fftbins"), 2, lengths=("Nx",)),
    "numpy.hamming": _Spec(np.hamming, ("M",), 1, lengths=("M",)),
    "numpy.hanning": _Spec(np.hanning, ("M",), 1, lengths=("M",)),
    "numpy.blackman": _Spec(np.blackman, ("M",), 1, lengths=("M",)),
    "numpy.bartlett": _Spec(np.bartlett, ("M",), 1, lengths=("M",)),
    "numpy.kaiser": _Spec(np.kaiser, ("M", "beta"), 2, lengths=("M",)),
    "numpy.ones": _Spec(np.ones, ("shape",), 1, lengths=("shape",)),
    "numpy.zeros": _Spec(np.zeros, ("shape",), 1, lengths=("shape",)),
    "numpy.linspace": _Spec(np.linspace, ("start", "stop", "num", "endpoint"), 2, lengths=("num",)),
    "numpy.arange": _Spec(np.arange, ("start", "stop", "step"), 1),
    "numpy.array": _Spec(np.array, ("object",), 1),
    "numpy.asarray": _Spec(np.asarray, ("a",), 1),
}  # fmt: skip
DESIGN_CALLS = tuple(_SPECS)


def _int_in(node: ast.AST, qual: str, name: str, value: Any, limit: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= limit:
        raise fail(node, f"{qual} argument {name!r} must be an integer 1..{limit} here, got {value!r}")


def _plain(node: ast.AST, value: Any, what: str) -> Any:
    """Design-call arguments: plain numbers, strings, bools, tuples of them, or bounded real arrays."""
    if isinstance(value, (int, float, str, bool)):
        return value
    if isinstance(value, tuple):
        return tuple(_plain(node, v, what) for v in value)
    if isinstance(value, np.ndarray) and value.ndim in (1, 2) and value.size <= MAX_ARRAY:
        return value
    raise fail(node, f"{what} must be a constant number, string or list of them")


def _bind(node: ast.Call, qual: str, spec: _Spec, args: list[Any], kwargs: dict[str, Any]) -> dict[str, Any]:
    if len(args) > len(spec.params):
        raise fail(node, f"{qual} takes at most {len(spec.params)} positional arguments ({', '.join(spec.params)})")
    bound = dict(zip(spec.params, args, strict=False))
    for key, value in kwargs.items():
        if key not in spec.params:
            raise fail(node, f"{qual} keyword {key!r} is not supported; supported: {', '.join(spec.params)}")
        if key in bound:
            raise fail(node, f"{qual} got argument {key!r} twice")
        bound[key] = value
    missing = [p for p in spec.params[: spec.required] if p not in bound]
    if missing and not (qual == "numpy.arange" and "start" in bound):
        raise fail(node, f"{qual} needs argument(s) {', '.join(missing)}")
    return {k: _plain(node, v, f"argument {k!r} of {qual}") for k, v in bound.items()}


def _check_sizes(node: ast.Call, qual: str, spec: _Spec, bound: dict[str, Any]) -> None:
    for name in spec.lengths:
        if name in bound:
            _int_in(node, qual, name, bound[name], MAX_TAPS)
    for name in spec.orders:
        _int_in(node, qual, name, bound[name], MAX_DESIGN_ORDER)
    if spec.iir:
        if bound.get("analog", False) is not False:
            raise fail(node, f"{qual}: analog designs cannot be streamed; use a digital design (analog=False)")
        if bound.get("output", "ba") not in ("ba", "sos"):
            raise fail(node, f"{qual}: output={bound['output']!r} is not supported; use output='ba' or 'sos'")
    if qual == "scipy.signal.remez":
        _int_in(node, qual, "numtaps", bound["numtaps"], MAX_REMEZ_TAPS)
        _int_in(node, qual, "grid_density", bound.get("grid_density", 16), MAX_GRID_DENSITY)
        _int_in(node, qual, "maxiter", bound.get("maxiter", 25), MAX_REMEZ_ITER)
    if qual == "scipy.signal.firwin2" and bound.get("nfreqs") is not None:
        _int_in(node, qual, "nfreqs", bound["nfreqs"], MAX_FIRWIN2_POINTS)
    if qual == "numpy.arange":
        _check_arange(node, bound)


def _check_arange(node: ast.Call, bound: dict[str, Any]) -> None:
    values = [bound.get(k) for k in ("start", "stop", "step")]
    if not all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) for v in values):
        raise fail(node, "numpy.arange takes real numbers")
    start, stop, step = values
    if stop is None:
        start, stop = 0, start
    step = 1 if step is None else step
    if step == 0 or not all(math.isfinite(float(v)) for v in (start, stop, step)):  # type: ignore[arg-type]
        raise fail(node, "numpy.arange needs finite bounds and a non-zero step")
    count = math.ceil((stop - start) / step)  # type: ignore[operator]
    if not 1 <= count <= MAX_TAPS:
        raise fail(node, f"numpy.arange would make {count} elements; allowed: 1..{MAX_TAPS}")


def _result(node: ast.Call, qual: str, value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(_result(node, qual, v) for v in value)
    if isinstance(value, (np.generic, int, float)) and not isinstance(value, (bool, np.bool_)):
        item = value.item() if isinstance(value, np.generic) else value
        if isinstance(item, float) and not math.isfinite(item):
            raise fail(node, f"{qual} returned a non-finite value")
        return item
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu" or arr.ndim not in (1, 2) or arr.size == 0 or arr.size > MAX_ARRAY:
        raise fail(node, f"{qual} must give a non-empty 1-D or 2-D real array here, got shape {arr.shape}")
    out = arr.astype(np.float64)
    if not np.all(np.isfinite(out)):
        raise fail(node, f"{qual} returned non-finite values (inf or nan)")
    return out


def design_call(node: ast.Call, func: Func, args: list[Any], kwargs: dict[str, Any]) -> Any:
    """Evaluate an allow-listed design-time call on folded constant arguments (see the module docstring)."""
    qual = func.qualname
    spec = _SPECS[qual]
    bound = _bind(node, qual, spec, args, kwargs)
    _check_sizes(node, qual, spec, bound)
    if qual in ("numpy.array", "numpy.asarray"):
        obj = next(iter(bound.values()))
        if isinstance(obj, tuple) and not all(isinstance(v, (int, float, tuple, np.ndarray)) for v in obj):
            raise fail(node, f"{qual} takes a list of real numbers (or of equal-length lists)")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            value = spec.fn(**bound)
    except Exception as exc:  # any design failure is the user's argument error
        short_name = qual.replace("scipy.signal.", "signal.").replace("numpy.", "np.")
        raise fail(node, f"{short_name} rejected its arguments: {exc}") from None
    return _result(node, qual, value)


def supported_calls() -> str:
    """Human list of callable names, for error messages."""
    return ", ".join([*STREAM_CALLS, *DESIGN_CALLS])
