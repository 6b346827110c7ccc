"""Bit-exact fixed-point golden models against plain integer references.

Every ``_plain_*`` function below is written with Python ints in explicit loops, straight from the documented
arithmetic, and uses nothing from ``sigforge.dsp.fixed`` (so a bug there makes these tests fail). Float
comparisons use the float golden model with the *quantised* coefficients, so they measure the arithmetic's
rounding, not the coefficient quantisation.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sigforge.dsp import fixed
from sigforge.dsp.blocks import decimate, delay, elementwise, fir, frame_ops, gain, iir, upfirdn
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.delay import DelayParams
from sigforge.dsp.blocks.elementwise import MapParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.frame_ops import FrameParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.blocks.upfirdn import UpfirdnParams
from sigforge.dsp.fixed import FixedPointError, UnsupportedFixedOp
from sigforge.dsp.types import FixedType, Overflow, Rounding, sfix, ufix

FEW = settings(max_examples=30, deadline=None)
ROUNDINGS = st.sampled_from(list(Rounding))
OVERFLOWS = st.sampled_from(list(Overflow))

# --- the plain integer references ----------------------------------------------------------------------------------


def _rshift(v: int, s: int, rounding: Rounding) -> int:
    """v / 2**s rounded (s <= 0: exact multiply), by divmod."""
    if s <= 0:
        return v * 2 ** (-s)
    q, r = divmod(v, 2**s)
    half = 2 ** (s - 1)
    if rounding is Rounding.FLOOR:
        return q
    if rounding is Rounding.NEAREST:
        return q + 1 if r > half or (r == half and v >= 0) else q
    return q + 1 if r > half or (r == half and q % 2 == 1) else q


def _fit(v: int, t: FixedType, overflow: Overflow) -> int:
    lo = -(2 ** (t.width - 1)) if t.signed else 0
    hi = 2 ** (t.width - 1) - 1 if t.signed else 2**t.width - 1
    if overflow is Overflow.SATURATE:
        return min(max(v, lo), hi)
    return (v - lo) % 2**t.width + lo


def _conv(v: int, frac: int, out: FixedType, rounding: Rounding, overflow: Overflow) -> int:
    return _fit(_rshift(v, frac - out.frac, rounding), out, overflow)


def _coef(v: float, t: FixedType) -> int:
    """Quantise a constant: round half to even (Python's round), saturate."""
    return _fit(round(v * 2.0**t.frac), t, Overflow.SATURATE)


def _real(raw: list[int] | np.ndarray, t: FixedType) -> np.ndarray:
    return np.asarray(raw, dtype=np.float64) * 2.0**-t.frac


def _raw_signal(t: FixedType, n_max: int = 60) -> st.SearchStrategy[list[int]]:
    lo = -(2 ** (t.width - 1)) if t.signed else 0
    return st.lists(st.integers(lo, 2 ** (t.width - 1) - 1 if t.signed else 2**t.width - 1), max_size=n_max)


@st.composite
def _signal_and_type(draw: st.DrawFn, min_size: int = 0) -> tuple[list[int], FixedType]:
    t = sfix(draw(st.integers(8, 20)), draw(st.integers(-2, 22)))
    xs = draw(st.lists(st.integers(-(2 ** (t.width - 1)), 2 ** (t.width - 1) - 1), min_size=min_size, max_size=60))
    return xs, t


def _splits(draw: st.DrawFn, n: int) -> list[int]:
    cuts = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    return [b - a for a, b in zip([0, *cuts], [*cuts, n], strict=True)]


def _stream(streamer: object, xs: list[int], sizes: list[int]) -> list[int]:
    got: list[int] = []
    pos = 0
    for size in sizes:
        got += streamer.process(np.asarray(xs[pos : pos + size], dtype=np.int64)).tolist()  # type: ignore[attr-defined]
        pos += size
    return got


# --- fixed.py helpers ----------------------------------------------------------------------------------------------


@FEW
@given(st.lists(st.integers(-(2**40), 2**40), max_size=30), st.integers(-8, 45), ROUNDINGS)
def test_shift_round_matches_divmod(vs: list[int], shift: int, rounding: Rounding) -> None:
    if shift > 0:  # exact ties (and their neighbours), which random values almost never hit
        vs = vs + [(k << shift) + (1 << (shift - 1)) + d for k in range(-3, 3) for d in (-1, 0, 1)]
    got = fixed.shift_round(np.asarray(vs, dtype=np.int64), shift, rounding).tolist()
    assert got == [_rshift(v, shift, rounding) for v in vs]
    assert [fixed.shift_round_int(v, shift, rounding) for v in vs] == got


@FEW
@given(st.lists(st.integers(-(2**40), 2**40), max_size=30), st.integers(1, 1000), ROUNDINGS)
def test_div_round_is_exact(vs: list[int], den: int, rounding: Rounding) -> None:
    def plain(v: int) -> int:
        q, r = divmod(v, den)
        if rounding is Rounding.FLOOR or 2 * r < den:
            return q
        if 2 * r > den:
            return q + 1
        return q + 1 if (v >= 0 if rounding is Rounding.NEAREST else q % 2 == 1) else q

    assert fixed.div_round(np.asarray(vs, dtype=np.int64), den, rounding).tolist() == [plain(v) for v in vs]


@FEW
@given(st.lists(st.integers(0, 2**62 - 1), max_size=30))
def test_isqrt_is_exact(vs: list[int]) -> None:
    extremes = [0, 1, 2, 3, 4, 2**62 - 1, (2**31 - 1) ** 2, (2**31 - 1) ** 2 - 1]
    assert fixed.isqrt(np.asarray(vs + extremes, dtype=np.int64)).tolist() == [math.isqrt(v) for v in vs + extremes]


def _plain_sqrt(v: int, frac: int, out_frac: int, rounding: Rounding) -> int:
    """round(sqrt(v / 2**frac) * 2**out_frac), exactly, with Fractions."""
    s = Fraction(v, 1) * Fraction(2) ** (2 * out_frac - frac)
    r = math.isqrt(math.floor(s))
    if rounding is Rounding.FLOOR:
        return r
    mid = (Fraction(2 * r + 1, 2)) ** 2
    if s > mid or (s == mid and (rounding is Rounding.NEAREST or r % 2 == 1)):
        return r + 1
    return r


@FEW
@given(st.lists(st.integers(0, 2**24), max_size=20), st.integers(-6, 30), st.integers(-4, 14), ROUNDINGS)
def test_sqrt_round_is_correctly_rounded(vs: list[int], frac: int, out_frac: int, rounding: Rounding) -> None:
    vs = [*vs, 9 << 6, 25, 2]  # squares and a tie (sqrt(2.25) = 1.5) at some scales
    try:
        got = fixed.sqrt_round(np.asarray(vs, dtype=np.int64), frac, out_frac, rounding).tolist()
    except FixedPointError:
        assert max(vs).bit_length() + 2 * out_frac - frac > fixed.MAX_BITS - 2  # refused only when too wide
        return
    assert got == [_plain_sqrt(v, frac, out_frac, rounding) for v in vs]


def test_sqrt_ties_follow_the_rounding_mode() -> None:
    # sqrt(2.25) = 1.5 exactly: v = 9 with frac 2, one fractional bit less than needed for the half
    for rounding, want in ((Rounding.FLOOR, 1), (Rounding.NEAREST, 2), (Rounding.CONVERGENT, 2)):
        assert fixed.sqrt_round(np.asarray([9]), 2, 0, rounding).tolist() == [want]
    # sqrt(6.25) = 2.5: convergent goes to the even 2
    assert fixed.sqrt_round(np.asarray([25]), 2, 0, Rounding.CONVERGENT).tolist() == [2]
    assert fixed.sqrt_round(np.asarray([25]), 2, 0, Rounding.NEAREST).tolist() == [3]


def test_helpers_refuse_what_int64_cannot_hold() -> None:
    with pytest.raises(FixedPointError, match="bits"):
        fixed.mul(np.asarray([2**40]), np.asarray([2**30]))
    with pytest.raises(FixedPointError, match="left shift"):
        fixed.shift_round(np.asarray([2**50]), -20, Rounding.FLOOR)
    with pytest.raises(FixedPointError, match="integers"):
        fixed.ints([0.5])


# --- CORDIC --------------------------------------------------------------------------------------------------------

_GUARD, _ZFRAC = 20, 40  # the documented CORDIC_GUARD and ANGLE_FRAC


def _plain_cordic(x: int, y: int, iterations: int) -> int:
    """atan2(y, x) with ANGLE_FRAC fractional bits, by the documented vectoring CORDIC."""
    if x == 0 and y == 0:
        return 0
    x, y = x * 2**_GUARD, y * 2**_GUARD
    z = 0
    if x < 0:
        z = round(math.pi * 2.0**_ZFRAC) * (1 if y >= 0 else -1)
        x, y = -x, -y
    for i in range(iterations):
        t = round(math.atan(2.0**-i) * 2.0**_ZFRAC)
        dx, dy = y // 2**i, x // 2**i
        if y > 0:
            x, y, z = x + dx, y - dy, z + t
        else:
            x, y, z = x - dx, y + dy, z - t
    return z


@FEW
@given(
    st.lists(st.tuples(st.integers(-(2**20), 2**20), st.integers(-(2**20), 2**20)), min_size=1, max_size=30),
    st.integers(1, 40),
    st.integers(10, 30),
    ROUNDINGS,
    OVERFLOWS,
)
def test_cordic_is_bit_exact(
    pts: list[tuple[int, int]], iterations: int, out_frac: int, rounding: Rounding, overflow: Overflow
) -> None:
    out = sfix(out_frac + 3, out_frac)
    xs, ys = zip(*pts, strict=True)
    got = fixed.cordic_angle(np.asarray(xs), np.asarray(ys), out=out, rounding=rounding, overflow=overflow,
                             iterations=iterations)  # fmt: skip
    want = [_conv(_plain_cordic(x, y, iterations), _ZFRAC, out, rounding, overflow) for x, y in pts]
    assert got.tolist() == want


@FEW
@given(st.lists(st.tuples(st.integers(-3000, 3000), st.integers(-3000, 3000)), min_size=1, max_size=40))
def test_cordic_error_against_atan2_is_bounded(pts: list[tuple[int, int]]) -> None:
    out, n = sfix(32, 28), fixed.CORDIC_ITERATIONS
    xs, ys = (np.asarray(v, dtype=np.int64) for v in zip(*pts, strict=True))
    got = _real(fixed.cordic_angle(xs, ys, out=out, rounding=Rounding.NEAREST, overflow=Overflow.WRAP), out)
    err = np.angle(np.exp(1j * (got - np.arctan2(ys, xs))))  # modulo 2*pi: +-pi may cross the cut
    mag = np.maximum(np.hypot(xs, ys), 1.0)
    bound = math.atan(2.0 ** -(n - 1)) + n * 2.0**-_ZFRAC + 4 * n / (2.0**_GUARD * mag) + out.lsb
    assert np.all(np.abs(err) <= bound)
    assert np.max(np.abs(err)) < 1e-6  # and the bound is tight enough to mean something


# --- FIR, gain, decimate, delay ------------------------------------------------------------------------------------


def _plain_fir(taps: list[int], xs: list[int], dec: int, acc: FixedType, frac: int, out: FixedType,
               rounding: Rounding, overflow: Overflow) -> list[int]:  # fmt: skip
    ys = []
    for n in range(0, len(xs), dec):
        s = sum(t * xs[n - i] for i, t in enumerate(taps) if n - i >= 0)
        ys.append(_conv(_fit(s, acc, Overflow.WRAP), frac, out, rounding, overflow))
    return ys


@FEW
@given(
    st.lists(st.floats(-1.5, 1.5), min_size=1, max_size=10),
    _signal_and_type(),
    st.integers(1, 4),
    st.integers(10, 18),
    st.integers(6, 20),
    ROUNDINGS,
    OVERFLOWS,
    st.data(),
)
def test_fir_fixed_is_bit_exact_and_streams(
    taps: list[float], sig: tuple[list[int], FixedType], dec: int, cbits: int, obits: int,
    rounding: Rounding, overflow: Overflow, data: st.DataObject,
) -> None:  # fmt: skip
    xs, xt = sig
    coef, out = sfix(cbits, cbits - 2), sfix(obits, xt.frac)
    acc = sfix(44, xt.frac + coef.frac)
    p = FirParams(tuple(taps), dec)
    kw = {"coef": coef, "acc": acc, "out": out, "rounding": rounding, "overflow": overflow}
    whole = fir.reference_fixed(p, xs, **kw).tolist()
    assert whole == _plain_fir([_coef(t, coef) for t in taps], xs, dec, acc, acc.frac, out, rounding, overflow)
    assert _stream(fir.FixedStreamer(p, **kw), xs, _splits(data.draw, len(xs))) == whole


@FEW
@given(st.floats(-4, 4), _signal_and_type(), st.integers(8, 18), st.integers(6, 24), ROUNDINGS, OVERFLOWS)
def test_gain_fixed_is_bit_exact(
    g: float, sig: tuple[list[int], FixedType], cbits: int, obits: int, rounding: Rounding, overflow: Overflow
) -> None:
    xs, xt = sig
    coef, out = sfix(cbits, cbits - 4), sfix(obits, xt.frac - 1)
    got = gain.reference_fixed(GainParams(g), xs, x=xt, coef=coef, out=out, rounding=rounding, overflow=overflow)
    q = _coef(g, coef)
    assert got.tolist() == [_conv(v * q, xt.frac + coef.frac, out, rounding, overflow) for v in xs]


def test_gain_fixed_approximates_float() -> None:
    xt, coef, out = sfix(16, 15), sfix(18, 14), sfix(16, 15)
    xs = np.arange(-8000, 8000, 37)
    got = gain.reference_fixed(GainParams(1.37), xs, x=xt, coef=coef, out=out, rounding=Rounding.NEAREST)
    want = gain.reference(GainParams(_coef(1.37, coef) * coef.lsb), _real(xs, xt))
    assert np.max(np.abs(_real(got, out) - want)) <= 0.5 * out.lsb


@FEW
@given(_signal_and_type(), st.integers(1, 5), st.integers(1, 6), st.data())
def test_decimate_and_delay_fixed_stream(
    sig: tuple[list[int], FixedType], factor: int, count: int, data: st.DataObject
) -> None:
    xs, _ = sig
    dec = decimate.reference_fixed(DecimateParams(factor), xs).tolist()
    assert dec == [xs[i] for i in range(0, len(xs), factor)]
    assert _stream(decimate.FixedStreamer(DecimateParams(factor)), xs, _splits(data.draw, len(xs))) == dec
    dl = delay.reference_fixed(DelayParams(count), xs).tolist()
    assert dl == [xs[i - count] if i >= count else 0 for i in range(len(xs))]
    assert _stream(delay.FixedStreamer(DelayParams(count)), xs, _splits(data.draw, len(xs))) == dl


# --- IIR ---------------------------------------------------------------------------------------------------------


def _plain_iir(sections: list[list[int]], xs: list[int], xt: FixedType, coef: FixedType, acc: FixedType,
               sec: FixedType, out: FixedType, rounding: Rounding, overflow: Overflow) -> list[int]:  # fmt: skip
    u = [_conv(v, xt.frac, sec, rounding, overflow) for v in xs]
    for b0, b1, b2, a1, a2 in sections:
        v: list[int] = []
        for n in range(len(u)):

            def at(seq: list[int], k: int) -> int:
                return seq[k] if k >= 0 else 0

            a = b0 * u[n] + b1 * at(u, n - 1) + b2 * at(u, n - 2) - a1 * at(v, n - 1) - a2 * at(v, n - 2)
            v.append(_conv(_fit(a, acc, Overflow.WRAP), acc.frac, sec, rounding, overflow))
        u = v
    return [_conv(v, sec.frac, out, rounding, overflow) for v in u]


@st.composite
def _stable_sos(draw: st.DrawFn) -> list[list[float]]:
    rows = []
    for _ in range(draw(st.integers(1, 3))):
        r, th = draw(st.floats(0.0, 0.95)), draw(st.floats(0.0, math.pi))
        b = [draw(st.floats(-1, 1)) for _ in range(3)]
        rows.append([*b, 1.0, -2 * r * math.cos(th), r * r])
    return rows


@FEW
@given(_stable_sos(), _signal_and_type(), st.integers(12, 20), st.integers(12, 28), ROUNDINGS, OVERFLOWS, st.data())
def test_iir_fixed_is_bit_exact_and_streams(
    sos: list[list[float]], sig: tuple[list[int], FixedType], cbits: int, sbits: int,
    rounding: Rounding, overflow: Overflow, data: st.DataObject,
) -> None:  # fmt: skip
    xs, xt = sig
    coef, sec, out = sfix(cbits, cbits - 3), sfix(sbits, sbits - 4), sfix(16, 12)
    acc = sfix(data.draw(st.integers(sbits + 2, 62)), sec.frac + coef.frac)  # narrow ones wrap
    p = iir.from_sos(sos)
    kw = {"x": xt, "coef": coef, "acc": acc, "sec": sec, "out": out, "rounding": rounding, "overflow": overflow}
    whole = iir.reference_fixed(p, xs, **kw).tolist()
    q = [[_coef(s[i], coef) for i in (0, 1, 2, 4, 5)] for s in p.sections]
    assert whole == _plain_iir(q, xs, xt, coef, acc, sec, out, rounding, overflow)
    assert _stream(iir.FixedStreamer(p, **kw), xs, _splits(data.draw, len(xs))) == whole


def test_iir_fixed_approximates_float_with_quantised_coefficients() -> None:
    from scipy import signal

    coef, sec, xt, out = sfix(20, 17), sfix(32, 24), sfix(16, 15), sfix(16, 15)
    acc = sfix(60, sec.frac + coef.frac)
    p = iir.from_sos(signal.butter(4, 0.2, output="sos"))
    rng = np.random.default_rng(7)
    xs = np.round(rng.uniform(-0.4, 0.4, 400) * 2**15).astype(np.int64)
    got = iir.reference_fixed(p, xs, x=xt, coef=coef, acc=acc, sec=sec, out=out, rounding=Rounding.NEAREST)
    qsos = [[_coef(v, coef) * coef.lsb if i != 3 else 1.0 for i, v in enumerate(s)] for s in p.sections]
    want = signal.sosfilt(np.asarray(qsos), _real(xs, xt))
    assert np.max(np.abs(_real(got, out) - want)) <= 2 * out.lsb


def test_iir_fixed_refuses_mismatched_accumulator() -> None:
    p = iir.from_sos([[1, 0, 0, 1, -0.5, 0]])
    with pytest.raises(FixedPointError, match="accumulator"):
        iir.reference_fixed(p, [1], x=sfix(16, 15), coef=sfix(16, 14), acc=sfix(40, 20), sec=sfix(16, 15),
                            out=sfix(16, 15))  # fmt: skip


# --- upfirdn -------------------------------------------------------------------------------------------------------


def _plain_upfirdn(h: list[int], xs: list[int], up: int, down: int, acc: FixedType, frac: int, out: FixedType,
                   rounding: Rounding, overflow: Overflow) -> list[int]:  # fmt: skip
    """The definition: zero-stuff, filter, keep every down-th (no polyphase)."""
    u = [0] * (len(xs) * up)
    for i, v in enumerate(xs):
        u[i * up] = v
    ys = []
    for k in range(len(xs) * up // down):
        s = sum(t * u[k * down - j] for j, t in enumerate(h) if k * down - j >= 0)
        ys.append(_conv(_fit(s, acc, Overflow.WRAP), frac, out, rounding, overflow))
    return ys


@FEW
@given(
    st.lists(st.floats(-1, 1), min_size=1, max_size=12),
    _signal_and_type(),
    st.integers(1, 5),
    st.integers(1, 5),
    ROUNDINGS,
    OVERFLOWS,
    st.data(),
)
def test_upfirdn_fixed_is_bit_exact_and_streams(
    taps: list[float], sig: tuple[list[int], FixedType], up: int, down: int,
    rounding: Rounding, overflow: Overflow, data: st.DataObject,
) -> None:  # fmt: skip
    xs, xt = sig
    coef, out = sfix(16, 15), sfix(14, xt.frac)
    acc = sfix(data.draw(st.integers(30, 48)), xt.frac + coef.frac)
    p = UpfirdnParams(tuple(taps), up, down)
    kw = {"coef": coef, "acc": acc, "out": out, "rounding": rounding, "overflow": overflow}
    whole = upfirdn.reference_fixed(p, xs, **kw).tolist()
    h = [_coef(t, coef) for t in taps]
    assert whole == _plain_upfirdn(h, xs, up, down, acc, acc.frac, out, rounding, overflow)
    assert _stream(upfirdn.FixedStreamer(p, **kw), xs, _splits(data.draw, len(xs))) == whole


def test_upfirdn_and_fir_fixed_approximate_float() -> None:
    rng = np.random.default_rng(3)
    taps = tuple(rng.uniform(-0.3, 0.3, 9))
    xt, coef, out = sfix(16, 15), sfix(16, 15), sfix(16, 15)
    acc = sfix(48, xt.frac + coef.frac)
    xs = np.round(rng.uniform(-0.3, 0.3, 300) * 2**15).astype(np.int64)
    qtaps = tuple(_coef(t, coef) * coef.lsb for t in taps)
    p = UpfirdnParams(taps, 3, 2)
    got = upfirdn.reference_fixed(p, xs, coef=coef, acc=acc, out=out)
    want = upfirdn.reference(UpfirdnParams(qtaps, 3, 2), _real(xs, xt))
    assert got.size == want.size and np.max(np.abs(_real(got, out) - want)) <= 0.5 * out.lsb
    got_fir = fir.reference_fixed(FirParams(taps, 2), xs, coef=coef, acc=acc, out=out)
    want_fir = fir.reference(FirParams(qtaps, 2), _real(xs, xt))
    assert np.max(np.abs(_real(got_fir, out) - want_fir)) <= 0.5 * out.lsb


# --- elementwise ---------------------------------------------------------------------------------------------------


def _plain_map(op: str, a: int, fa: int, b: int, fb: int, c: int, fc: int, out: FixedType,
               rounding: Rounding, overflow: Overflow) -> int:  # fmt: skip
    """One real op on raw ints (operands aligned to the larger frac), converted to ``out``."""
    g = max(fa, fb, fc) if op == "clip" else max(fa, fb)
    A, B, C = a * 2 ** (g - fa), b * 2 ** (g - fb), c * 2 ** (g - fc) if op == "clip" else 0
    exact = {
        "add": (A + B, g), "sub": (A - B, g), "maximum": (max(A, B), g), "minimum": (min(A, B), g),
        "clip": (min(max(A, B), C), g), "mul": (a * b, fa + fb), "neg": (-a, fa), "abs": (abs(a), fa),
        "sign": ((a > 0) - (a < 0), 0),
    }  # fmt: skip
    if op == "sqrt":
        return _fit(_plain_sqrt(a, fa, out.frac, rounding), out, overflow)
    v, f = exact[op]
    return _conv(v, f, out, rounding, overflow)


@FEW
@given(
    st.sampled_from(["add", "sub", "mul", "neg", "abs", "sign", "maximum", "minimum", "clip", "sqrt"]),
    st.lists(st.tuples(st.integers(-5000, 5000), st.integers(-5000, 5000), st.integers(-5000, 5000)), max_size=30),
    st.tuples(st.integers(-3, 14), st.integers(-3, 14), st.integers(-3, 14)),
    st.integers(6, 24),
    st.integers(-2, 16),
    ROUNDINGS,
    OVERFLOWS,
    st.booleans(),
)
def test_map_fixed_ops_are_bit_exact(
    op: str, rows: list[tuple[int, int, int]], fracs: tuple[int, int, int], obits: int, ofrac: int,
    rounding: Rounding, overflow: Overflow, unsigned_out: bool,
) -> None:  # fmt: skip
    out = ufix(obits, ofrac) if unsigned_out else sfix(obits, ofrac)
    if op == "sqrt":
        rows = [(abs(a), b, c) for a, b, c in rows]
    n_in = elementwise.OPS[op][0]
    expr = (op, *(("in", i) for i in range(n_in)))
    cols = [np.asarray([r[i] for r in rows], dtype=np.int64) for i in range(n_in)]
    types = [sfix(16, f) for f in fracs[:n_in]]
    got = elementwise.reference_fixed(MapParams(expr), *cols, types=types, out=out, rounding=rounding,
                                      overflow=overflow)  # fmt: skip
    assert isinstance(got, np.ndarray)
    fa, fb, fc = fracs
    want = [_plain_map(op, a, fa, b, fb, c, fc, out, rounding, overflow) for a, b, c in rows]
    assert got.tolist() == want


@FEW
@given(
    st.lists(st.tuples(st.integers(-(2**13), 2**13 - 1), st.integers(-(2**13), 2**13 - 1)), min_size=1, max_size=40),
    st.integers(8, 16),
    ROUNDINGS,
    OVERFLOWS,
    st.data(),
)
def test_fm_discriminator_fixed_is_bit_exact_and_close_to_float(
    samples: list[tuple[int, int]], pfrac: int, rounding: Rounding, overflow: Overflow, data: st.DataObject
) -> None:
    """angle(x[n] * conj(x[n-1])): delay + map, against plain ints (complex product, then CORDIC)."""
    xt, prod = sfix(14, 13), sfix(24, pfrac)
    re = np.asarray([s[0] for s in samples], dtype=np.int64)
    im = np.asarray([s[1] for s in samples], dtype=np.int64)
    sizes = _splits(data.draw, len(samples))
    d_re = _stream(delay.FixedStreamer(DelayParams(1)), re.tolist(), sizes)
    d_im = _stream(delay.FixedStreamer(DelayParams(1)), im.tolist(), sizes)
    expr = ("angle", ("mul", ("in", 0), ("conj", ("in", 1))))
    got = elementwise.reference_fixed(MapParams(expr), (re, im), (np.asarray(d_re), np.asarray(d_im)),
                                      types=[xt, xt], out=prod, rounding=rounding, overflow=overflow)  # fmt: skip
    want = []
    prev = (0, 0)
    for r, i in samples:
        # every node's result is converted to `prod`: first conj(previous), then the product
        cr, ci = (_conv(v, xt.frac, prod, rounding, overflow) for v in (prev[0], -prev[1]))
        pr, pi = r * cr - i * ci, r * ci + i * cr
        qr, qi = (_conv(v, xt.frac + prod.frac, prod, rounding, overflow) for v in (pr, pi))
        z = _plain_cordic(qr, qi, fixed.CORDIC_ITERATIONS)
        want.append(_conv(z, _ZFRAC, prod, rounding, overflow))
        prev = (r, i)
    assert isinstance(got, np.ndarray) and got.tolist() == want
    # vs float, where nothing overflows: the error comes from rounding conj(x[n-1]) and the product to `prod`
    x = _real(re, xt) + 1j * _real(im, xt)
    prev_x = np.concatenate([[0], x[:-1]])
    fl = elementwise.reference(MapParams(expr), x, prev_x)
    p = x * np.conj(prev_x)
    ok = (np.abs(p) > 64 * prod.lsb) & (np.abs(fl) < 3.1)  # |x| < 1 and |p| < 1: no overflow in sfix(24, <=16)
    dp = 2 * (np.abs(x) + 1) * prod.lsb  # conj rounding times |x[n]|, plus the product's own rounding
    err = np.abs(_real(got, prod) - fl)[ok]
    assert np.all(err <= dp[ok] / np.abs(p[ok]) * 1.5 + 2 * prod.lsb)


def test_map_fixed_refuses_transcendental_ops_by_name() -> None:
    for op in ("exp", "log10"):
        with pytest.raises(UnsupportedFixedOp, match=op) as info:
            elementwise.reference_fixed(MapParams(("add", (op, ("in", 0)), ("const", 1.0))), np.asarray([1]),
                                        types=[sfix(16, 8)], out=sfix(16, 8))  # fmt: skip
        assert info.value.op == op
    with pytest.raises(FixedPointError, match="negative"):
        elementwise.reference_fixed(MapParams(("sqrt", ("in", 0))), np.asarray([-1]), types=[sfix(8, 4)],
                                    out=sfix(8, 4))  # fmt: skip


def test_map_fixed_complex_abs_and_parts() -> None:
    t, out = sfix(16, 8), sfix(20, 10)
    re, im = np.asarray([3 << 8, -5, 0, 1000]), np.asarray([4 << 8, 12, 0, -7])
    absd = elementwise.reference_fixed(MapParams(("abs", ("in", 0))), (re, im), types=[t], out=out,
                                       rounding=Rounding.FLOOR)  # fmt: skip
    want = [
        math.isqrt((r * r + i * i) * 2 ** (2 * out.frac - 2 * t.frac))
        for r, i in zip(re.tolist(), im.tolist(), strict=True)
    ]
    assert isinstance(absd, np.ndarray) and absd.tolist() == want
    assert absd[0] == 5 << 10  # |3 + 4j| = 5 exactly
    got = elementwise.reference_fixed(MapParams(("imag", ("conj", ("in", 0)))), (re, im), types=[t], out=out)
    assert isinstance(got, np.ndarray) and got.tolist() == [-v * 4 for v in im.tolist()]


# --- frame operations ----------------------------------------------------------------------------------------------


def _plain_fft(xr: list[int], xi: list[int], inverse: bool, coef: FixedType, out: FixedType,
               rounding: Rounding, overflow: Overflow) -> tuple[list[int], list[int]]:  # fmt: skip
    """Iterative radix-2 DIT on lists: bit-reversed order, each butterfly (a +- w b) / 2 rounded once."""
    n = len(xr)
    levels = n.bit_length() - 1
    order = [int(bin(i)[2:].zfill(levels)[::-1], 2) if levels else 0 for i in range(n)]
    re, im = [xr[j] for j in order], [xi[j] for j in order]
    span = 2
    while span <= n:
        half = span // 2
        for k in range(half):
            ang = 2.0 * math.pi * k / span
            wr = _coef(math.cos(ang), coef)
            wi = _coef((1.0 if inverse else -1.0) * math.sin(ang), coef)
            for base in range(0, n, span):
                i, j = base + k, base + k + half
                tr, ti = re[j] * wr - im[j] * wi, re[j] * wi + im[j] * wr
                ar, ai = re[i] * 2**coef.frac, im[i] * 2**coef.frac
                s = coef.frac + 1
                re[i], im[i], re[j], im[j] = (
                    _fit(_rshift(v, s, rounding), out, overflow) for v in (ar + tr, ai + ti, ar - tr, ai - ti)
                )
        span *= 2
    return re, im


@FEW
@given(st.integers(0, 6), st.integers(1, 3), st.integers(10, 18), ROUNDINGS, OVERFLOWS, st.booleans(), st.data())
def test_fft_fixed_is_bit_exact(
    log_n: int, frames: int, cbits: int, rounding: Rounding, overflow: Overflow, inverse: bool, data: st.DataObject
) -> None:
    n, t, coef = 1 << log_n, sfix(16, 15), sfix(cbits, cbits - 2)
    vals = st.lists(st.integers(-(2**15), 2**15 - 1), min_size=n * frames, max_size=n * frames)
    xr, xi = data.draw(vals), data.draw(vals)
    kind = "ifft" if inverse else "fft"
    got = frame_ops.reference_fixed(FrameParams(kind, n), (np.asarray(xr), np.asarray(xi)), x=t, out=t, coef=coef,
                                    rounding=rounding, overflow=overflow)  # fmt: skip
    assert isinstance(got, tuple)
    want_r: list[int] = []
    want_i: list[int] = []
    for f in range(frames):
        r, i = _plain_fft(xr[f * n : (f + 1) * n], xi[f * n : (f + 1) * n], inverse, coef, t, rounding, overflow)
        want_r += r
        want_i += i
    assert got[0].tolist() == want_r and got[1].tolist() == want_i


def test_fft_fixed_approximates_numpy() -> None:
    rng = np.random.default_rng(5)
    n, t, coef = 256, sfix(24, 22), sfix(20, 18)
    x = rng.uniform(-0.5, 0.5, n) + 1j * rng.uniform(-0.5, 0.5, n)
    xr, xi = np.round(x.real * 2**22).astype(np.int64), np.round(x.imag * 2**22).astype(np.int64)
    xq = _real(xr, t) + 1j * _real(xi, t)
    for kind, want in (("fft", np.fft.fft(xq) / n), ("ifft", np.fft.ifft(xq))):
        got = frame_ops.reference_fixed(FrameParams(kind, n), (xr, xi), x=t, out=t, coef=coef,
                                        rounding=Rounding.CONVERGENT)  # fmt: skip
        assert isinstance(got, tuple)
        # log2(n) stages, each at most ~1 LSB of rounding plus twiddle error (scaled down by the halvings)
        assert np.max(np.abs(_real(got[0], t) + 1j * _real(got[1], t) - want)) <= 8 * math.log2(n) * t.lsb
    rf = frame_ops.reference_fixed(FrameParams("rfft", n), xr, x=t, out=t, coef=coef)
    assert isinstance(rf, tuple) and rf[0].size == n // 2 + 1
    assert np.max(np.abs(_real(rf[0], t) + 1j * _real(rf[1], t) - np.fft.rfft(_real(xr, t)) / n)) <= 64 * t.lsb
    spec = np.fft.rfft(_real(xr, t))[: n // 2 + 1] / n
    sr, si = np.round(spec.real * 2**22).astype(np.int64), np.round(spec.imag * 2**22).astype(np.int64)
    ir = frame_ops.reference_fixed(FrameParams("irfft", n // 2 + 1), (sr, si), x=t, out=t, coef=coef)
    assert isinstance(ir, np.ndarray)
    assert np.max(np.abs(_real(ir, t) - np.fft.irfft(_real(sr, t) + 1j * _real(si, t)))) <= 64 * t.lsb


@FEW
@given(st.integers(1, 12), st.integers(1, 3), st.integers(8, 24), st.integers(0, 20), ROUNDINGS, OVERFLOWS,
       st.data())  # fmt: skip
def test_frame_window_and_reductions_are_bit_exact(
    n: int, frames: int, obits: int, ofrac: int, rounding: Rounding, overflow: Overflow, data: st.DataObject
) -> None:
    t, coef, out = sfix(16, 12), sfix(16, 14), sfix(obits, ofrac)
    xs = data.draw(st.lists(st.integers(-(2**15), 2**15 - 1), min_size=n * frames, max_size=n * frames))
    win = tuple(data.draw(st.lists(st.floats(-1.5, 1.5), min_size=n, max_size=n)))
    kw = {"x": t, "out": out, "coef": coef, "rounding": rounding, "overflow": overflow}
    rows = [xs[f * n : (f + 1) * n] for f in range(frames)]
    qw = [_coef(w, coef) for w in win]

    def run(kind: str, op: str = "", values: tuple[float, ...] = ()) -> list[int]:
        got = frame_ops.reference_fixed(FrameParams(kind, n, op, values), np.asarray(xs), **kw)
        assert isinstance(got, np.ndarray)
        return got.tolist()

    conv = lambda v, f: _conv(v, f, out, rounding, overflow)  # noqa: E731
    assert run("const", "mul", win) == [conv(v * w, t.frac + coef.frac) for r in rows for v, w in zip(r, qw)]
    assert run("const", "rsub", win) == [conv(w - v * 4, 14) for r in rows for v, w in zip(r, qw)]
    assert run("sum") == [conv(sum(r), t.frac) for r in rows]
    assert run("max") == [conv(max(r), t.frac) for r in rows]
    assert run("argmax") == [conv(r.index(max(r)), 0) for r in rows]
    mean = []
    for r in rows:  # sum / n at out.frac, one rounding, by Fractions
        exact = Fraction(sum(r), n) * Fraction(2) ** (out.frac - t.frac)
        q, rem = divmod(exact.numerator, exact.denominator)
        frac_part = Fraction(rem, exact.denominator)
        up = rounding is not Rounding.FLOOR and (
            frac_part > Fraction(1, 2)
            or (frac_part == Fraction(1, 2) and (exact >= 0 if rounding is Rounding.NEAREST else q % 2 == 1))
        )
        mean.append(_fit(q + up, out, overflow))
    assert run("mean") == mean
    assert run("fftshift") == [conv(v, t.frac) for r in rows for v in np.fft.fftshift(r).tolist()]


def test_frame_fixed_refusals() -> None:
    with pytest.raises(UnsupportedFixedOp, match="div"):
        frame_ops.reference_fixed(FrameParams("const", 2, "div", (1.0, 2.0)), np.asarray([1, 2]), x=sfix(8, 4),
                                  out=sfix(8, 4), coef=sfix(8, 4))  # fmt: skip
    with pytest.raises(FixedPointError, match="power-of-two"):
        frame_ops.reference_fixed(FrameParams("fft", 6), np.zeros(6, dtype=np.int64), x=sfix(8, 4), out=sfix(8, 4),
                                  coef=sfix(8, 4))  # fmt: skip
    with pytest.raises(FixedPointError, match="coef"):
        frame_ops.reference_fixed(FrameParams("fft", 4), np.zeros(4, dtype=np.int64), x=sfix(8, 4), out=sfix(8, 4))
