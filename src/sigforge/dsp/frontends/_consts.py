"""Compile-time values of the Python frontend and the allow-listed design-time calls.

Invariants:
    * Nothing here evaluates user code. Constants are folded from the AST by explicit rules that follow Python's
      own semantics (``int / int`` is a float, list arithmetic is refused rather than guessed at). The only
      functions ever called are the allow-listed design functions in ``_design.DESIGN_CALLS``.
    * Constant arrays stay small: a folded array operation never grows an array (NumPy broadcasting of two
      bounded arrays is bounded by the larger one, and 2-D arrays are only the (n, 6) sos form in practice).
    * Every failure raises ``InvalidAlgorithm`` at the offending node.
"""

from __future__ import annotations

import ast
import math
import operator
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
MAX_ARRAY = 1 << 16  # elements of any folded constant array (broadcasting is checked before it allocates)


@dataclass(frozen=True, slots=True)
class Module:
    """An imported module (or module alias) known to the translator, e.g. ``scipy.signal``."""

    qualname: str


@dataclass(frozen=True, slots=True)
class Func:
    """An allow-listed function, e.g. ``scipy.signal.firwin``."""

    qualname: str


KNOWN_MODULES = ("numpy", "numpy.fft", "scipy", "scipy.signal")
MODULE_CONSTANTS: dict[str, float] = {"numpy.pi": math.pi, "numpy.e": math.e}
# Calls applied to signals (translated to IR nodes); the numpy ones fold to constants on constant arguments.
ELEMENTWISE_CALLS = ("numpy.abs", "numpy.sqrt", "numpy.exp", "numpy.log10", "numpy.sign", "numpy.clip",
                     "numpy.maximum", "numpy.minimum")  # fmt: skip
COMPLEX_CALLS = ("numpy.real", "numpy.imag", "numpy.conj", "numpy.conjugate", "numpy.angle")
# Frame operations (``_frames``): transforms of the current frame and per-frame reductions.
FRAME_CALLS = ("numpy.fft.fft", "numpy.fft.ifft", "numpy.fft.rfft", "numpy.fft.irfft", "numpy.fft.fftshift",
               "numpy.fft.ifftshift", "numpy.sum", "numpy.mean", "numpy.max", "numpy.amax", "numpy.argmax")  # fmt: skip
STREAM_CALLS = (
    "scipy.signal.lfilter",
    "scipy.signal.sosfilt",
    "scipy.signal.upfirdn",
    *ELEMENTWISE_CALLS,
    *COMPLEX_CALLS,
    *FRAME_CALLS,
)


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
    shapes = [np.shape(v) for v in (left, right)]
    try:
        size = math.prod(np.broadcast_shapes(*shapes))
    except ValueError:
        raise fail(node, f"cannot fold {short(node)}: array shapes {shapes[0]} and {shapes[1]} differ") from None
    if size > MAX_ARRAY:
        raise fail(node, f"constant array expression would have {size} elements; the limit is {MAX_ARRAY}")
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
