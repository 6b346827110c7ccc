"""Numeric types of the translator: sample dtypes, stream (edge) types and fixed point.

Invariants:
    * A ``DType`` names the in-memory sample format exactly (``float32`` is IEEE binary32, ``int16`` is two's
      complement); the enum values are the strings used in requests and ``interface.json``.
    * A ``FixedType`` ``sfix(W, F)`` / ``ufix(W, F)`` holds integers of ``W`` bits whose real value is
      ``raw * 2**-F``. ``quantize`` is the ONE place where reals become raw fixed-point integers, so golden models
      and generated code round the same way (see the probe report: quantise in one place).
"""

from __future__ import annotations

import math
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


# One step of a stream's count function: ("ceil", a, b) maps the cumulative sample count I to ceil(I * a / b)
# (decimation ``x[::b]``, an FIR keeping every b-th output), ("floor", a, b) to floor(I * a / b) (``upfirdn`` up a,
# down b; a frame operation of b samples giving a).
Stage = tuple[str, int, int]


def then(counts: tuple[Stage, ...], mode: str, num: int, den: int) -> tuple[Stage, ...]:
    """``counts`` followed by one more stage, normalised: identity stages are dropped and consecutive pure
    decimations merge (``ceil(ceil(I / a) / b) == ceil(I / (a * b))``), so equal count functions built along
    different but equivalent paths (``x[::2][::3]`` and ``x[::6]``) compare equal."""
    if num == den:
        return counts
    if mode == "ceil" and num == 1 and counts and counts[-1][0] == "ceil" and counts[-1][1] == 1:
        return (*counts[:-1], ("ceil", 1, counts[-1][2] * den))
    return (*counts, (mode, num, den))


@dataclass(frozen=True, slots=True)
class StreamType:
    """The type of one IR edge.

    A stream is *fixed* (every frame carries exactly ``samples`` samples) or *variable*: when the request's frame
    length is not a multiple of a decimation before it (``x[::3]`` of 1000-sample frames gives 334, 333, 333, 334,
    ... samples), ``samples`` is the most one frame can carry and the exact count of each frame follows from
    ``counts``; the long-run average is the input frame length times ``rate``.

    Attributes:
        dtype: sample format on the edge.
        samples: samples per frame on this edge (fixed), or the most a frame can carry (variable); >= 1 on inputs.
        rate: sample rate relative to the graph input (``Fraction(1, 4)`` after decimating by 4).
        variable: whether the number of samples per frame varies from frame to frame.
        counts: the count function from the graph input (``Stage`` steps, see ``then``): the cumulative samples
            on this edge after ``I`` input samples. Two variable streams with equal ``counts`` carry the same number
            of samples in every frame, so they may be combined sample by sample.
    """

    dtype: DType
    samples: int
    rate: Fraction
    variable: bool = False
    counts: tuple[Stage, ...] = ()

    @property
    def frame_multiple(self) -> int:
        """The smallest input frame length for which this stream (and every one before it) is fixed: the lcm of
        the denominators of the rates along ``counts``."""
        rate, lcm = Fraction(1), 1
        for _mode, num, den in self.counts:
            rate *= Fraction(num, den)
            lcm = lcm * rate.denominator // math.gcd(lcm, rate.denominator)
        return lcm

    def describe_count(self) -> str:
        """Human words for the samples per frame: ``"64"`` or ``"at most 334 (varies; 1/3 of the input's)"``."""
        if not self.variable:
            return str(self.samples)
        return f"at most {self.samples} (varies from frame to frame; {self.rate} of the input's on average)"


def cumulative(counts: tuple[Stage, ...], inputs: int) -> int:
    """Samples on a stream with count function ``counts`` after ``inputs`` graph-input samples."""
    total = inputs
    for mode, num, den in counts:
        total = -(-total * num // den) if mode == "ceil" else total * num // den
    return total


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
