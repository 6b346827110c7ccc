"""Compile-time values of the Python frontend and the allow-listed design-time calls.

Invariants:
    * Nothing here evaluates user code. Constants are folded from the AST by explicit rules that follow Python's
      own semantics (``int / int`` is a float, list arithmetic is refused rather than guessed at), and the only
      functions ever called are the allow-listed design functions in ``DESIGN_CALLS``, on folded constants of
      plain types, with size limits checked first.
    * Every failure raises ``InvalidAlgorithm`` at the offending node.
"""

from __future__ import annotations

import ast
import math
import operator
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks.fir import MAX_TAPS
from sigforge.errors import InvalidAlgorithm, SourceLocation

FloatArray = npt.NDArray[np.float64]
Scalar = int | float | complex | bool | str
Const = Scalar | tuple[Any, ...] | FloatArray

MAX_INT = 1 << 62


@dataclass(frozen=True, slots=True)
class Module:
    """An imported module (or module alias) known to the translator, e.g. ``scipy.signal``."""

    qualname: str


@dataclass(frozen=True, slots=True)
class Func:
    """An allow-listed function, e.g. ``scipy.signal.firwin``."""

    qualname: str


KNOWN_MODULES = ("numpy", "scipy", "scipy.signal")
MODULE_CONSTANTS: dict[str, float] = {"numpy.pi": math.pi, "numpy.e": math.e}
STREAM_CALLS = ("scipy.signal.lfilter",)


# The source being translated, as UTF-8 lines: ``ast`` columns are byte offsets, users and editors count characters.
_SOURCE_LINES: ContextVar[list[bytes] | None] = ContextVar("sigforge_source_lines", default=None)


@contextmanager
def source_text(source: str) -> Iterator[None]:
    """Make ``loc`` report character columns for nodes of ``source`` inside the block."""
    token = _SOURCE_LINES.set(source.encode("utf-8", errors="surrogatepass").splitlines())
    try:
        yield
    finally:
        _SOURCE_LINES.reset(token)


def _char_column(line: int | None, byte_column: int | None) -> int | None:
    lines = _SOURCE_LINES.get()
    if line is None or byte_column is None or lines is None or not 0 < line <= len(lines):
        return byte_column
    return len(lines[line - 1][:byte_column].decode("utf-8", errors="replace"))


def loc(node: ast.AST) -> SourceLocation:
    """The source location of an AST node (1-based line, 0-based column in characters, like a SyntaxError's)."""
    line = getattr(node, "lineno", 1)
    end_line = getattr(node, "end_lineno", None)
    column = _char_column(line, getattr(node, "col_offset", 0))
    return SourceLocation(
        line,
        column if column is not None else 0,
        end_line,
        _char_column(end_line, getattr(node, "end_col_offset", None)),
    )


def fail(node: ast.AST, message: str) -> InvalidAlgorithm:
    """An ``InvalidAlgorithm`` located at ``node``."""
    return InvalidAlgorithm(message, location=loc(node))


def short(node: ast.AST) -> str:
    """Source-like text of a node for messages, kept short."""
    text = ast.unparse(node)
    return text if len(text) <= 60 else text[:57] + "..."


def as_taps(node: ast.AST, value: Any, what: str) -> FloatArray:
    """A real, finite, 1-D coefficient vector of 1..MAX_TAPS entries."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = (value,)
    if isinstance(value, tuple):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            raise fail(node, f"{what} must be a list of real numbers")
        value = np.asarray(value, dtype=np.float64)
    if not isinstance(value, np.ndarray) or value.ndim != 1 or value.dtype.kind not in "fi":
        raise fail(node, f"{what} must be a 1-D list or array of real numbers, e.g. [0.25, 0.5, 0.25]")
    if not 1 <= value.size <= MAX_TAPS:
        raise fail(node, f"{what} must have 1..{MAX_TAPS} coefficients, got {value.size}")
    if not np.all(np.isfinite(value)):
        raise fail(node, f"{what} contains a non-finite value (inf or nan)")
    return value.astype(np.float64)


def _check(node: ast.AST, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise fail(node, "integer constant too large")
    if isinstance(value, float) and not math.isfinite(value):
        raise fail(node, "constant expression is not finite (overflow or inf)")
    return value


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}


def is_number(value: Any) -> bool:
    """A real or complex Python number (bools count, as in Python)."""
    return isinstance(value, (int, float, complex))


def fold_binop(node: ast.BinOp, left: Any, right: Any) -> Const:
    """Fold ``left <op> right`` for numbers and NumPy arrays, with Python's semantics."""
    op = type(node.op)
    if op not in _BINOPS:
        raise fail(node, f"operator {type(node.op).__name__} is not supported in constant expressions")
    if isinstance(left, (tuple, str)) or isinstance(right, (tuple, str)):
        raise fail(node, "arithmetic on lists, tuples or strings is not supported; wrap numbers in np.array(...)")
    if not all(is_number(v) or isinstance(v, np.ndarray) for v in (left, right)):
        raise fail(node, f"cannot fold {short(node)}")
    if op is ast.Pow:
        exponent = np.max(np.abs(right)) if isinstance(right, np.ndarray) else abs(right)
        if exponent > 1024 or (isinstance(left, int) and isinstance(right, int) and abs(left) > 2**31):
            raise fail(node, "exponent too large in constant expression")
    try:
        with np.errstate(all="raise"):
            result = _BINOPS[op](left, right)
    except ZeroDivisionError:
        raise fail(node, "division by zero in constant expression") from None
    except (FloatingPointError, OverflowError, ValueError, TypeError) as exc:
        raise fail(node, f"cannot fold {short(node)}: {exc}") from None
    if isinstance(result, np.ndarray):
        if not np.all(np.isfinite(result)):
            raise fail(node, "constant expression is not finite")
        return result
    if isinstance(result, np.generic):
        result = result.item()
    return _check(node, result)  # type: ignore[no-any-return]


def fold_unary(node: ast.UnaryOp, value: Any) -> Const:
    """Fold ``-v`` / ``+v`` for numbers and arrays."""
    if not (is_number(value) or isinstance(value, np.ndarray)) or type(node.op) not in (ast.USub, ast.UAdd):
        raise fail(node, f"unary operator in {short(node)} is not supported")
    return -value if isinstance(node.op, ast.USub) else +value  # type: ignore[no-any-return]


def _plain(node: ast.AST, value: Any, what: str) -> Any:
    """Design-call arguments must be plain numbers, strings, bools or sequences of them."""
    if isinstance(value, (int, float, str, bool)):
        return value
    if isinstance(value, tuple):
        return tuple(_plain(node, v, what) for v in value)
    if isinstance(value, np.ndarray) and value.ndim == 1 and value.size <= MAX_TAPS:
        return value
    raise fail(node, f"{what} must be a constant number, string or list of them")


def _firwin(node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> FloatArray:
    from scipy import signal  # design-time only; imported lazily to keep the parser import light

    allowed = {"numtaps", "cutoff", "width", "window", "pass_zero", "scale", "fs"}
    for key in kwargs:
        if key not in allowed:
            raise fail(node, f"signal.firwin keyword {key!r} is not supported; supported: {sorted(allowed)}")
    numtaps = args[0] if args else kwargs.get("numtaps")
    if not isinstance(numtaps, int) or isinstance(numtaps, bool) or not 1 <= numtaps <= MAX_TAPS:
        raise fail(node, f"signal.firwin numtaps must be an integer 1..{MAX_TAPS}, got {numtaps!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            taps = signal.firwin(*args, **kwargs)
    except Exception as exc:  # any design failure is the user's argument error
        raise fail(node, f"signal.firwin rejected its arguments: {exc}") from None
    return as_taps(node, np.asarray(taps, dtype=np.float64), "signal.firwin result")


def _array(node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> FloatArray:
    if len(args) != 1 or kwargs:
        raise fail(node, "np.array/np.asarray take exactly one list argument here (no dtype or other keywords)")
    return as_taps(node, args[0], "array")


def _ones(node: ast.Call, args: list[Any], kwargs: dict[str, Any]) -> FloatArray:
    if len(args) != 1 or kwargs or not isinstance(args[0], int) or not 1 <= args[0] <= MAX_TAPS:
        raise fail(node, f"np.ones takes one integer length 1..{MAX_TAPS}")
    return np.ones(args[0])


DESIGN_CALLS: dict[str, Callable[[ast.Call, list[Any], dict[str, Any]], FloatArray]] = {
    "scipy.signal.firwin": _firwin,
    "numpy.array": _array,
    "numpy.asarray": _array,
    "numpy.ones": _ones,
}


def design_call(node: ast.Call, func: Func, args: list[Any], kwargs: dict[str, Any]) -> FloatArray:
    """Evaluate an allow-listed design-time call on folded constant arguments."""
    checked_args = [_plain(node, a, f"argument {i + 1} of {func.qualname}") for i, a in enumerate(args)]
    checked_kwargs = {k: _plain(node, v, f"argument {k!r} of {func.qualname}") for k, v in kwargs.items()}
    return DESIGN_CALLS[func.qualname](node, checked_args, checked_kwargs)


def supported_calls() -> str:
    """Human list of callable names, for error messages."""
    return ", ".join([*STREAM_CALLS, *DESIGN_CALLS])
