"""Shared integer arithmetic of the bit-exact fixed-point golden models.

Invariants:
    * Every function here works on raw two's complement integers (``int64`` arrays, or Python ints where a block's
      recursion runs sample by sample); a raw value ``v`` with ``frac`` fractional bits means ``v * 2**-frac``.
    * Intermediate magnitudes stay below ``2**MAX_BITS`` (62 bits): the helpers that can grow a value check the
      actual data and raise ``FixedPointError`` rather than let int64 arithmetic wrap silently.
    * Rounding is one of ``Rounding``: ``floor`` (an arithmetic right shift), ``nearest`` (ties away from zero) and
      ``convergent`` (ties to even), exactly as ``types.quantize`` rounds reals, so an integer that is shifted here
      and the real it stands for quantise the same way. Overflow (wrap or saturate) is ``types.overflow_raw``.
    * Nothing here uses floating point on data: ``isqrt`` starts from a float estimate and corrects it exactly,
      and the CORDIC angle table is a constant computed once from ``math.atan``.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from sigforge.dsp.types import FixedType, Overflow, Rounding, overflow_raw

IntArray = npt.NDArray[np.int64]

MAX_BITS = 62  # magnitude bound of any intermediate (one bit of int64 kept free for a final add)
ANGLE_FRAC = 40  # fractional bits of the CORDIC angle accumulator (pi * 2**40 < 2**42)
CORDIC_GUARD = 20  # the CORDIC vector is shifted left by this many bits before iterating (less truncation error)
CORDIC_ITERATIONS = 32  # default number of CORDIC micro-rotations: residual angle <= atan(2**-31) ~ 4.7e-10 rad
CORDIC_MAX_INPUT_BITS = MAX_BITS - CORDIC_GUARD - 2  # the gain of ~1.65 and the pre-rotation need two bits
_ATAN_TABLE = tuple(round(math.atan(2.0**-i) * 2.0**ANGLE_FRAC) for i in range(64))  # round(): ties to even
_PI = round(math.pi * 2.0**ANGLE_FRAC)


class FixedPointError(ValueError):
    """A fixed-point golden model cannot compute the request exactly (types, ranges or widths out of bounds)."""


class UnsupportedFixedOp(FixedPointError):
    """An operation has no fixed-point golden model (it needs a transcendental function or a division)."""

    def __init__(self, op: str, why: str) -> None:
        super().__init__(f"operation {op!r} has no fixed-point golden model: {why}")
        self.op = op


def ints(values: npt.ArrayLike) -> IntArray:
    """``values`` as an int64 array (FixedPointError for non-integer data such as floats)."""
    arr = np.asarray(values)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise FixedPointError(f"raw fixed-point values must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64)


def check_bits(values: IntArray, extra: int, what: str) -> None:
    """Raise FixedPointError if ``max|values| * 2**extra`` could reach ``2**MAX_BITS``.

    Args:
        values: raw integers.
        extra: bits the caller adds (a left shift, or the bit length of the other factor of a product).
        what: names the operation in the message.
    """
    top = int(np.max(np.abs(values))) if values.size else 0
    if top.bit_length() + extra > MAX_BITS:
        raise FixedPointError(f"{what}: intermediate values need {top.bit_length() + extra} bits, over {MAX_BITS}")


def bits(values: IntArray) -> int:
    """Bit length of the largest magnitude in ``values`` (0 for an empty or all-zero array)."""
    return int(np.max(np.abs(values))).bit_length() if values.size else 0


def mul(a: IntArray, b: IntArray, what: str = "product") -> IntArray:
    """Exact product of raw integers (fraction lengths add); FixedPointError if it could exceed MAX_BITS."""
    if bits(a) + bits(b) + 1 > MAX_BITS:
        raise FixedPointError(f"{what}: a product needs {bits(a) + bits(b)} bits, over {MAX_BITS - 1}")
    return np.asarray(a * b, dtype=np.int64)


def shift_round(values: IntArray, shift: int, rounding: Rounding) -> IntArray:
    """``values * 2**-shift`` rounded to an integer: a rounding right shift for ``shift > 0``, exact otherwise.

    ``floor`` is the arithmetic right shift; ``nearest`` rounds a tie away from zero (a negative tie stays at the
    floor, a positive one goes up); ``convergent`` rounds a tie to the even neighbour.
    """
    v = np.asarray(values, dtype=np.int64)
    if shift <= 0:
        check_bits(v, -shift, "left shift")
        return np.asarray(v << -shift, dtype=np.int64)
    if shift >= 64:  # |values| < 2**63 is below half a unit: the floor is -1 or 0, a round-up gives 0
        floor = np.where(v < 0, -1, 0).astype(np.int64)
        return floor if rounding is Rounding.FLOOR else np.zeros_like(v)
    floor = v >> shift
    if rounding is Rounding.FLOOR:
        return np.asarray(floor, dtype=np.int64)
    half = np.int64(1) << (shift - 1)
    rem = v - (floor << shift)
    tie_up = (v >= 0) if rounding is Rounding.NEAREST else ((floor & 1) == 1)
    up = (rem > half) | ((rem == half) & tie_up)
    return np.asarray(floor + up.astype(np.int64), dtype=np.int64)


def shift_round_int(value: int, shift: int, rounding: Rounding) -> int:
    """``shift_round`` for one Python int (used by sample-by-sample recursions)."""
    if shift <= 0:
        return value << -shift
    floor = value >> shift
    if rounding is Rounding.FLOOR:
        return floor
    half, rem = 1 << (shift - 1), value - (floor << shift)
    tie_up = value >= 0 if rounding is Rounding.NEAREST else floor & 1 == 1
    return floor + 1 if rem > half or (rem == half and tie_up) else floor


def overflow_int(value: int, ftype: FixedType, overflow: Overflow) -> int:
    """``overflow_raw`` for one Python int."""
    if overflow is Overflow.SATURATE:
        return min(max(value, ftype.min_raw), ftype.max_raw)
    wrapped = value % (1 << ftype.width)
    return wrapped - (1 << ftype.width) if ftype.signed and wrapped > ftype.max_raw else wrapped


def requantize(values: IntArray, frac: int, out: FixedType, rounding: Rounding, overflow: Overflow) -> IntArray:
    """Raw integers with ``frac`` fractional bits converted to ``out``: rounding shift, then overflow."""
    return overflow_raw(shift_round(values, frac - out.frac, rounding), out, overflow)


def div_round(num: IntArray, den: int, rounding: Rounding) -> IntArray:
    """``num / den`` for a positive integer ``den``, rounded exactly like ``shift_round`` rounds."""
    if den <= 0:
        raise FixedPointError(f"div_round needs a positive divisor, got {den}")
    n = np.asarray(num, dtype=np.int64)
    floor, rem = np.floor_divide(n, den), np.mod(n, den)  # rem in [0, den)
    if rounding is Rounding.FLOOR:
        return np.asarray(floor, dtype=np.int64)
    twice = 2 * rem
    tie_up = (n >= 0) if rounding is Rounding.NEAREST else ((floor & 1) == 1)
    up = (twice > den) | ((twice == den) & tie_up)
    return np.asarray(floor + up.astype(np.int64), dtype=np.int64)


def isqrt(values: IntArray) -> IntArray:
    """Exact ``floor(sqrt(v))`` of non-negative integers below ``2**MAX_BITS`` (float estimate, integer fix-up)."""
    v = np.asarray(values, dtype=np.int64)
    if v.size and int(v.min()) < 0:
        raise FixedPointError("isqrt of a negative value")
    check_bits(v, 0, "isqrt")
    r = np.floor(np.sqrt(v.astype(np.float64))).astype(np.int64)  # within one of the truth below 2**62
    for _ in range(2):
        r = np.where(r * r > v, r - 1, r)
        r = np.where((r + 1) * (r + 1) <= v, r + 1, r)
    return np.asarray(r, dtype=np.int64)


def sqrt_round(values: IntArray, frac: int, out_frac: int, rounding: Rounding) -> IntArray:
    """``sqrt(v * 2**-frac)`` at ``out_frac`` fractional bits, correctly rounded (no double rounding).

    With ``k = frac - 2 * out_frac`` the wanted value is ``sqrt(v / 2**k)``. ``v`` is scaled to an integer
    ``s = v * 2**e`` with ``e = 2 * j - k >= 0`` and ``j >= 1``, so the result is ``sqrt(s) / 2**j`` rounded:
    ``R = isqrt(s)`` and the remainder test ``R * R == s`` decide the round-up exactly (a tie needs ``s`` to be
    the square of ``(2q + 1) * 2**(j - 1)``).

    Raises:
        FixedPointError: a negative input, or a scaled value over MAX_BITS.
    """
    v = np.asarray(values, dtype=np.int64)
    if v.size and int(v.min()) < 0:
        raise FixedPointError("sqrt of a negative fixed-point value")
    k = frac - 2 * out_frac
    j = max(1, -(-k // 2))  # the smallest j >= 1 with e = 2j - k >= 0: v is never shifted right
    e = 2 * j - k
    check_bits(v, e, "sqrt")
    s = v << e
    root = isqrt(s)
    exact = root * root == s
    floor = root >> j
    if rounding is Rounding.FLOOR:
        return np.asarray(floor, dtype=np.int64)
    half = np.int64(1) << (j - 1)
    rem = root - (floor << j)
    above = (rem > half) | ((rem == half) & ~exact)  # sqrt(s) > R when not exact, so R == half means above it
    tie = (rem == half) & exact
    tie_up = np.ones_like(tie) if rounding is Rounding.NEAREST else (floor & 1) == 1  # sqrt >= 0: away = up
    return np.asarray(floor + (above | (tie & tie_up)).astype(np.int64), dtype=np.int64)


def cordic_angle(
    re: IntArray,
    im: IntArray,
    *,
    out: FixedType,
    rounding: Rounding,
    overflow: Overflow,
    iterations: int = CORDIC_ITERATIONS,
) -> IntArray:
    """``atan2(im, re)`` in radians, as raw integers of ``out``, by integer CORDIC in vectoring mode.

    Algorithm (both inputs at the same scale, which cancels): shift ``(x, y) = (re, im)`` left by
    ``CORDIC_GUARD`` bits; if ``x < 0`` rotate by pi (``(x, y) -> (-x, -y)``, angle ``+pi`` when ``y >= 0``,
    ``-pi`` otherwise), so the rest lies in [-pi/2, pi/2]. Then for ``i = 0 .. iterations - 1``: if ``y > 0``
    ``(x, y, z) += (y >> i, -(x >> i), +T[i])`` else ``(x, y, z) += (-(y >> i), x >> i, -T[i])`` with arithmetic
    (floor) shifts and ``T[i] = round(atan(2**-i) * 2**ANGLE_FRAC)``. ``z`` (``ANGLE_FRAC`` fractional bits)
    is rounded to ``out.frac`` with ``rounding`` and brought into range with ``overflow``; ``(0, 0)`` gives 0.

    Error: the residual angle after ``N`` iterations is at most ``atan(2**-(N-1))``; the table adds at most
    ``N * 2**-(ANGLE_FRAC+1)``; the floor shifts add about ``2 * N`` units at the guarded scale, i.e. about
    ``2 * N / (2**CORDIC_GUARD * |(re, im)|)`` radians; then half an ``out`` LSB (one for floor). Near +-pi the
    result may land on the other side of the branch cut (an error of 2*pi modulo 2*pi).

    Raises:
        FixedPointError: inputs of more than ``CORDIC_MAX_INPUT_BITS`` bits, ``out.frac > ANGLE_FRAC`` or an
            iteration count outside 1..64.
    """
    if not 1 <= iterations <= len(_ATAN_TABLE):
        raise FixedPointError(f"CORDIC iterations must be 1..{len(_ATAN_TABLE)}, got {iterations}")
    if out.frac > ANGLE_FRAC:
        raise FixedPointError(f"CORDIC angles have {ANGLE_FRAC} fractional bits; {out} asks for more")
    x, y = np.asarray(re, dtype=np.int64), np.asarray(im, dtype=np.int64)
    if max(bits(x), bits(y)) > CORDIC_MAX_INPUT_BITS:
        raise FixedPointError(f"CORDIC inputs must fit in {CORDIC_MAX_INPUT_BITS} bits")
    zero = (x == 0) & (y == 0)
    x, y = x << CORDIC_GUARD, y << CORDIC_GUARD
    left = x < 0
    z = np.where(left, np.where(y >= 0, _PI, -_PI), 0).astype(np.int64)
    x, y = np.where(left, -x, x), np.where(left, -y, y)
    for i in range(iterations):
        dx, dy, down = y >> i, x >> i, y > 0
        x, y = np.where(down, x + dx, x - dx), np.where(down, y - dy, y + dy)
        z = np.where(down, z + _ATAN_TABLE[i], z - _ATAN_TABLE[i])
    z = np.where(zero, 0, z).astype(np.int64)
    return requantize(z, ANGLE_FRAC, out, rounding, overflow)
