"""IIR filter block: a cascade of biquad sections (``scipy.signal.sosfilt``) or one ``lfilter(b, a)``.

``IirParams.form`` says which SciPy call the user wrote and the golden model mirrors it in structure:
``"ba"`` is ``scipy.signal.lfilter(b, a, x)`` (transposed direct form II on the whole polynomial) and ``"sos"``
is ``scipy.signal.sosfilt(sos, x)``. ``sections`` is what generated code implements: for ``"ba"`` of order <= 2
it is that one direct-form section; above order 2 it is ``scipy.signal.tf2sos(b, a)`` computed at design time,
because a high-order direct form loses precision (poles of a long polynomial are ill-conditioned).

A complex stream is filtered as its real and imaginary parts (real coefficients; SciPy does the same on the
complex128 signal). Invariants checked by ``infer``: one float or complex input, 1..``MAX_SECTIONS`` sections of
six finite coefficients with ``a0 == 1`` (normalised), ``b``/``a`` normalised (``a[0] == 1``) when the form is
``"ba"``, and every pole strictly inside the unit circle (``|p| <= 1 - STABILITY_MARGIN``): a pole on or
outside it makes the output grow without bound or never decay, so no tolerance could verify it. Rate and frame
length are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import signal

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.blocks.elementwise import wide
from sigforge.dsp.fixed import FixedPointError, IntArray, ints, mul, overflow_int, requantize, shift_round_int
from sigforge.dsp.types import FixedType, Overflow, Rounding, StreamType, quantize

FloatArray = npt.NDArray[np.float64]
Section = tuple[float, float, float, float, float, float]

MAX_ORDER = 64  # of the whole filter; a 32nd-order band-pass is far beyond practical designs
MAX_SECTIONS = MAX_ORDER // 2
STABILITY_MARGIN = 1e-9  # poles this close to the unit circle count as on it (roots carry rounding error)


@dataclass(frozen=True, slots=True)
class IirParams:
    """Parameters of an IIR node.

    Attributes:
        form: ``"ba"`` (from ``lfilter``) or ``"sos"`` (from ``sosfilt``): the golden model's structure.
        b: numerator, normalised by ``a[0]`` (empty for ``"sos"``).
        a: denominator with ``a[0] == 1`` (empty for ``"sos"``).
        sections: biquads ``(b0, b1, b2, 1, a1, a2)`` implementing the same filter.
    """

    form: str
    b: tuple[float, ...]
    a: tuple[float, ...]
    sections: tuple[Section, ...]

    @property
    def order(self) -> int:
        """The filter order (length of the longer polynomial minus one; twice the sections for SOS)."""
        if self.form == "ba":
            return max(len(self.b), len(self.a)) - 1
        return 2 * len(self.sections)


def max_pole_radius(params: IirParams) -> float:
    """The largest pole magnitude (0 for a filter with no poles)."""
    if params.form == "ba":
        poles = np.roots(np.asarray(params.a)) if len(params.a) > 1 else np.zeros(0)
    else:
        poles = np.concatenate([np.roots(np.asarray(s[3:])) for s in params.sections])
    return float(np.max(np.abs(poles))) if poles.size else 0.0


def from_ba(b: npt.ArrayLike, a: npt.ArrayLike) -> IirParams:
    """Parameters for ``lfilter(b, a)``: normalise by ``a[0]``, pick the sections (ValueError if ``a[0] == 0``)."""
    bn, an = np.asarray(b, dtype=np.float64), np.asarray(a, dtype=np.float64)
    if an.size == 0 or an[0] == 0:
        raise ValueError("the leading denominator coefficient a[0] must not be zero")
    bn, an = bn / an[0], an / an[0]
    order = max(bn.size, an.size) - 1
    if order > MAX_ORDER:
        raise ValueError(f"IIR order {order} exceeds the limit of {MAX_ORDER}")
    if order <= 2:
        sos = np.zeros((1, 6))
        sos[0, : bn.size], sos[0, 3 : 3 + an.size] = bn, an
    else:
        sos = signal.tf2sos(bn, an)
    return IirParams("ba", tuple(map(float, bn)), tuple(map(float, an)), _sections(sos))


def from_sos(sos: npt.ArrayLike) -> IirParams:
    """Parameters for ``sosfilt(sos)``: each section normalised by its own ``a0`` (ValueError if zero)."""
    arr = np.asarray(sos, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] != 6 or not 1 <= arr.shape[0] <= MAX_SECTIONS:
        raise ValueError(f"sos must have shape (n, 6) with 1 <= n <= {MAX_SECTIONS}, got {arr.shape}")
    if np.any(arr[:, 3] == 0):
        raise ValueError("every section's a0 (column 3) must be non-zero")
    return IirParams("sos", (), (), _sections(arr / arr[:, 3:4]))


def _sections(sos: FloatArray) -> tuple[Section, ...]:
    return tuple((float(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), float(r[5])) for r in sos)


def infer(params: IirParams, inputs: Sequence[StreamType]) -> StreamType:
    """Type and rate rule (see the module docstring)."""
    if len(inputs) != 1:
        raise RuleError(f"iir takes exactly one input, got {len(inputs)}")
    if not inputs[0].dtype.is_float:
        raise RuleError(f"iir filters float or complex streams, got {inputs[0].dtype}")
    if params.form not in ("ba", "sos"):
        raise RuleError(f"iir form must be 'ba' or 'sos', got {params.form!r}")
    if not 1 <= len(params.sections) <= MAX_SECTIONS:
        raise RuleError(f"iir needs 1..{MAX_SECTIONS} sections, got {len(params.sections)}")
    values = [v for s in params.sections for v in s] + list(params.b) + list(params.a)
    if not all(math.isfinite(v) for v in values):
        raise RuleError("iir coefficients must be finite")
    if any(s[3] != 1.0 for s in params.sections) or (params.form == "ba" and (not params.a or params.a[0] != 1.0)):
        raise RuleError("iir coefficients must be normalised (a0 == 1)")
    radius = max_pole_radius(params)
    if radius > 1.0 - STABILITY_MARGIN:
        raise RuleError(f"unstable IIR filter: largest pole magnitude {radius:.9f} is not below 1")
    return inputs[0]


def reference(params: IirParams, x: npt.ArrayLike) -> FloatArray:
    """Float64 golden model for a whole signal: exactly the SciPy call the user wrote."""
    xs = wide(x)
    if params.form == "ba":
        return wide(signal.lfilter(params.b, params.a, xs))
    return wide(signal.sosfilt(np.asarray(params.sections), xs))


class Streamer:
    """Frame-by-frame IIR carrying SciPy's own filter state (``zi``) across frames."""

    def __init__(self, params: IirParams) -> None:
        self._p = params
        self.reset()

    def reset(self) -> None:
        """Zero the filter state."""
        if self._p.form == "ba":
            self._zi = np.zeros(max(len(self._p.b), len(self._p.a)) - 1)
        else:
            self._zi = np.zeros((len(self._p.sections), 2))

    def process(self, frame: npt.ArrayLike) -> FloatArray:
        """Filter one frame."""
        xs = wide(frame)
        if xs.size == 0:
            return np.zeros(0)
        zi = self._zi.astype(xs.dtype) if np.iscomplexobj(xs) else self._zi
        if self._p.form == "ba":
            if zi.size == 0:  # order 0: a pure gain, lfilter refuses an empty zi
                return wide(signal.lfilter(self._p.b, self._p.a, xs))
            y, self._zi = signal.lfilter(self._p.b, self._p.a, xs, zi=zi)
        else:
            y, self._zi = signal.sosfilt(np.asarray(self._p.sections), xs, zi=zi)
        return wide(y)


class FixedStreamer:
    """Bit-exact fixed-point IIR, frame by frame: a cascade of direct-form-I biquads with a wide accumulator.

    Structure (the same for ``"ba"`` and ``"sos"``: it runs ``params.sections``). The input ``x`` (type ``x``) is
    first converted to the section type ``sec`` (rounding, overflow; exact when ``x == sec``). Each section, with
    coefficients quantised to ``coef`` (convergent, saturate), input ``u`` and output ``v`` (both ``sec``)::

        a[n] = b0*u[n] + b1*u[n-1] + b2*u[n-2] - a1*v[n-1] - a2*v[n-2]     exact, sec.frac + coef.frac bits
        a[n] wraps into the accumulator type ``acc`` (``acc.frac == sec.frac + coef.frac``, width <= 63)
        v[n] = overflow(round(a[n] * 2**-coef.frac), sec)                  per-section output quantisation

    The last section's output is converted from ``sec`` to ``out`` (rounding, overflow). The state is
    ``u[n-1], u[n-2], v[n-1], v[n-2]`` per section (raw ``sec`` integers), so frames may have any length. The
    feed-forward sums are vectorised; the recursion runs sample by sample on Python ints. A complex stream is
    filtered as its real and imaginary parts (real coefficients).

    Raises:
        FixedPointError: ``acc.frac != sec.frac + coef.frac``, or ``sec.width + coef.width > 60`` (the five
            products and their sum must stay exact in int64 before the accumulator wraps).
    """

    def __init__(
        self,
        params: IirParams,
        *,
        x: FixedType,
        coef: FixedType,
        acc: FixedType,
        sec: FixedType,
        out: FixedType,
        rounding: Rounding = Rounding.CONVERGENT,
        overflow: Overflow = Overflow.SATURATE,
    ) -> None:
        if acc.frac != sec.frac + coef.frac:
            raise FixedPointError(f"iir accumulator {acc} must have sec.frac + coef.frac = {sec.frac + coef.frac}")
        if sec.width + coef.width > 60:
            raise FixedPointError(f"iir section type {sec} and coefficient type {coef} exceed 60 bits together")
        self._coefs: list[list[int]] = [
            quantize(np.asarray(s)[[0, 1, 2, 4, 5]], coef, Rounding.CONVERGENT, Overflow.SATURATE).tolist()
            for s in params.sections
        ]
        self._x, self._coef, self._acc, self._sec, self._out = x, coef, acc, sec, out
        self._rounding, self._overflow = rounding, overflow
        self.reset()

    def reset(self) -> None:
        """Zero every section's state."""
        self._state = [[0, 0, 0, 0] for _ in self._coefs]  # u[n-1], u[n-2], v[n-1], v[n-2]

    def process(self, frame: npt.ArrayLike) -> IntArray:
        """Filter one frame of raw ``x`` integers; returns raw ``out`` integers."""
        u = requantize(ints(frame).reshape(-1), self._x.frac, self._sec, self._rounding, self._overflow)
        for coefs, state in zip(self._coefs, self._state, strict=True):
            u = self._section(u, coefs, state)
        return requantize(u, self._sec.frac, self._out, self._rounding, self._overflow)

    def _section(self, u: IntArray, c: list[int], state: list[int]) -> IntArray:
        b0, b1, b2, a1, a2 = c
        ext = np.concatenate([np.asarray([state[1], state[0]], dtype=np.int64), u])  # u[n-2], u[n-1], u[n]...
        b = np.asarray([b0, b1, b2], dtype=np.int64)
        ff = mul(ext[2:], b[0:1]) + mul(ext[1:-1], b[1:2]) + mul(ext[:-2], b[2:3])
        v1, v2 = state[2], state[3]
        shift, acc, sec, rnd, ovf = self._coef.frac, self._acc, self._sec, self._rounding, self._overflow
        out = []
        for f in ff.tolist():
            a = overflow_int(f - a1 * v1 - a2 * v2, acc, Overflow.WRAP)
            v1, v2 = overflow_int(shift_round_int(a, shift, rnd), sec, ovf), v1
            out.append(v1)
        if u.size:
            state[:] = [int(ext[-1]), int(ext[-2]), v1, v2]
        return np.asarray(out, dtype=np.int64)


def reference_fixed(
    params: IirParams,
    x_raw: npt.ArrayLike,
    *,
    x: FixedType,
    coef: FixedType,
    acc: FixedType,
    sec: FixedType,
    out: FixedType,
    rounding: Rounding = Rounding.CONVERGENT,
    overflow: Overflow = Overflow.SATURATE,
) -> IntArray:
    """Bit-exact fixed-point golden model for a whole signal (the structure is ``FixedStreamer``'s)."""
    streamer = FixedStreamer(params, x=x, coef=coef, acc=acc, sec=sec, out=out, rounding=rounding, overflow=overflow)
    return streamer.process(x_raw)
