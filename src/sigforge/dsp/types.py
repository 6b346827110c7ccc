"""Numeric types of the translator: sample dtypes, stream (edge) types and fixed point.

Invariants:
    * A ``DType`` names the in-memory sample format exactly (``float32`` is IEEE binary32, ``int16`` is two's
      complement); the enum values are the strings used in requests and ``interface.json``.
    * A ``FixedType`` ``sfix(W, F)`` / ``ufix(W, F)`` holds integers of ``W`` bits whose real value is
      ``raw * 2**-F``. ``quantize`` is the ONE place where reals become raw fixed-point integers, so golden models
      and generated code round the same way (see the probe report: quantise in one place).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

import numpy as np
import numpy.typing as npt


class DType(StrEnum):
    """Sample formats a stream can carry."""

    FLOAT32 = "float32"
    FLOAT64 = "float64"
    COMPLEX64 = "complex64"
    COMPLEX128 = "complex128"
    INT16 = "int16"

    @property
    def is_complex(self) -> bool:
        """Whether samples are complex."""
        return self in (DType.COMPLEX64, DType.COMPLEX128)

    @property
    def is_float(self) -> bool:
        """Whether samples are real or complex floating point."""
        return self is not DType.INT16

    @property
    def numpy(self) -> np.dtype[np.generic]:
        """The NumPy dtype with the same memory layout (little-endian)."""
        return np.dtype(self.value).newbyteorder("<")


# Short names used in docs and the architecture page.
f32, f64, c64, c128 = DType.FLOAT32, DType.FLOAT64, DType.COMPLEX64, DType.COMPLEX128


@dataclass(frozen=True, slots=True)
class StreamType:
    """The type of one IR edge.

    Attributes:
        dtype: sample format on the edge.
        samples: samples per frame on this edge (a positive integer; rates are fixed per frame).
        rate: sample rate relative to the graph input (``Fraction(1, 4)`` after decimating by 4).
    """

    dtype: DType
    samples: int
    rate: Fraction


class Rounding(StrEnum):
    """How a real value between two representable values is rounded."""

    FLOOR = "floor"  # toward -inf: what an arithmetic right shift does
    NEAREST = "nearest"  # ties away from zero
    CONVERGENT = "convergent"  # ties to even (unbiased)


class Overflow(StrEnum):
    """What happens to a value outside the representable range."""

    WRAP = "wrap"
    SATURATE = "saturate"


@dataclass(frozen=True, slots=True)
class FixedType:
    """A binary fixed-point type: ``width`` bits in total, ``frac`` of them fractional.

    Attributes:
        signed: two's complement when True, unsigned otherwise.
        width: total bits, 1..64.
        frac: fractional bits (may be negative or exceed ``width``).
    """

    signed: bool
    width: int
    frac: int

    def __post_init__(self) -> None:
        if not 1 <= self.width <= 64:
            raise ValueError(f"fixed-point width must be 1..64 bits, got {self.width}")

    @property
    def min_raw(self) -> int:
        """Smallest raw integer."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def max_raw(self) -> int:
        """Largest raw integer."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def lsb(self) -> float:
        """Real value of one least significant bit."""
        return float(2.0**-self.frac)

    def __str__(self) -> str:
        return f"{'s' if self.signed else 'u'}fix({self.width},{self.frac})"


def sfix(width: int, frac: int) -> FixedType:
    """Signed fixed point, e.g. ``sfix(16, 15)`` is Q15."""
    return FixedType(True, width, frac)


def ufix(width: int, frac: int) -> FixedType:
    """Unsigned fixed point."""
    return FixedType(False, width, frac)


def _round(scaled: npt.NDArray[np.float64], rounding: Rounding) -> npt.NDArray[np.float64]:
    if rounding is Rounding.FLOOR:
        return np.floor(scaled)
    if rounding is Rounding.NEAREST:
        return np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.rint(scaled)  # IEEE round-half-even


def overflow_raw(raw: npt.NDArray[np.int64], ftype: FixedType, overflow: Overflow) -> npt.NDArray[np.int64]:
    """Bring integers into ``ftype``'s raw range by wrapping or saturating.

    Args:
        raw: integers, possibly out of range.
        ftype: target type.
        overflow: wrap (two's complement modulo) or saturate.

    Returns:
        int64 raw values inside ``[ftype.min_raw, ftype.max_raw]``.
    """
    raw = np.asarray(raw, dtype=np.int64)
    if overflow is Overflow.SATURATE:
        return np.clip(raw, ftype.min_raw, ftype.max_raw).astype(np.int64)
    if ftype.width == 64:
        return raw  # int64 arithmetic already wraps at 64 bits
    modulus = 1 << ftype.width
    wrapped = np.mod(raw, modulus)  # numpy mod is non-negative for a positive modulus
    if ftype.signed:
        wrapped = np.where(wrapped > ftype.max_raw, wrapped - modulus, wrapped)
    return wrapped.astype(np.int64)


def quantize(
    values: npt.ArrayLike,
    ftype: FixedType,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
) -> npt.NDArray[np.int64]:
    """Quantize real values to raw fixed-point integers.

    Rounding happens in float64 on ``value * 2**frac`` (exact for |scaled| < 2**53), which is why widths up to 52
    bits round exactly; wider types are exact only for values that are already integers at that scale.

    Args:
        values: real values (array-like).
        ftype: the fixed-point type.
        rounding: rounding mode.
        overflow: overflow mode.

    Returns:
        Raw integers (int64) such that ``raw * ftype.lsb`` approximates ``values``.
    """
    scaled = np.ldexp(np.asarray(values, dtype=np.float64), ftype.frac)
    if not np.all(np.isfinite(scaled)):
        raise ValueError("cannot quantize non-finite values")
    rounded = _round(scaled, rounding)
    # Saturate in float first so that huge values do not overflow the int64 cast.
    limit = float(2**62)
    rounded = np.clip(rounded, -limit, limit)
    return overflow_raw(rounded.astype(np.int64), ftype, overflow)


def to_real(raw: npt.ArrayLike, ftype: FixedType) -> npt.NDArray[np.float64]:
    """The real values of raw fixed-point integers."""
    return np.ldexp(np.asarray(raw, dtype=np.float64), -ftype.frac)


def parse_dtype(name: str) -> DType:
    """The ``DType`` called ``name``.

    Raises:
        ValueError: unknown name (the message lists the known ones).
    """
    try:
        return DType(name)
    except ValueError:
        known = ", ".join(d.value for d in DType)
        raise ValueError(f"unknown dtype {name!r}; known dtypes: {known}") from None
