"""Generated C99 FFTs of any length (pure: text in, text out; libm not even needed at run time).

API: :func:`generate_fft` (complex), :func:`generate_rfft` / :func:`generate_irfft` (real signal, ``n//2 + 1``
bins). Each returns an :class:`FFTCode` whose ``definitions`` hold constant tables and ``static`` functions;
the entry point is ``void PREFIX(const T *restrict in, T *restrict out, T *restrict work)``.

Invariants:
    * Layout: complex data are interleaved ``re, im`` pairs of ``T`` (``float`` for float32, ``double`` for
      float64), as everywhere else in the host-C backend; ``in`` holds ``2*n`` (real transforms: ``n`` real, or
      ``2*(n//2+1)`` for the inverse) values. ``in``, ``out`` and ``work`` must not overlap (``restrict``);
      ``in`` is never written. ``work`` holds ``FFTCode.work_len`` values of ``T`` (may be 0: pass NULL).
    * Scaling as NumPy's default ``norm="backward"``: forward unnormalised, inverse scaled by ``1/n`` (the scale
      is folded into the last stage). ``irfft`` ignores the imaginary parts of bins 0 and ``n/2`` like NumPy.
    * Algorithms: ``n`` whose prime factors are 2, 3, 5, 7: a mixed-radix Stockham autosort FFT (radix 4 first,
      then one radix 2, then 3, 5, 7; no bit reversal), the first stage reading the interleaved input and the
      last writing the interleaved output, split re/im arrays in between so that gcc -O3 vectorises the
      butterflies. Any other ``n``: Bluestein (chirp-z) with two forward power-of-two FFTs of size
      ``M >= 2n - 1``; the chirp and the transformed, 1/M-scaled conjugate chirp are tables. Even-``n`` real
      transforms use a complex FFT of ``n/2`` on the input reinterpreted as complex plus an O(n) split step;
      odd ``n`` goes through a full complex FFT.
    * Tables (twiddles, chirps) are computed at generation time in float64 by NumPy, angles reduced exactly in
      integers, then rounded once to ``T``. Accuracy against ``numpy.fft`` in float64, max error relative to the
      RMS of the exact output: float32 ~1e-6, float64 ~1e-13 for n <= 65536 (Bluestein a few times higher).
    * Every function and table comment carries ``[src:N]`` when ``src_line`` is given (traceability).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from sigforge.dsp.backends.fft_kernels import (
    Mode,
    lit,
    plan_radices,
    stage_function,
    stages_of,
    table,
    unit_roots,
)

FloatName = Literal["float32", "float64"]


@dataclass(frozen=True)
class FFTCode:
    """Generated C for one transform: ``declarations`` (the prototype) and ``definitions`` (tables, functions)."""

    prefix: str
    n: int
    ctype: str  # "float" or "double"
    kind: Literal["fft", "ifft", "rfft", "irfft"]
    algorithm: str  # human-readable, e.g. "stockham radices 4x4x2" or "bluestein M=2048 (stockham 4x4x4x4x4x2)"
    in_len: int  # values of ctype read from ``in``
    out_len: int  # values of ctype written to ``out``
    work_len: int  # values of ctype needed in ``work``
    declarations: str
    definitions: str


def _ctype(dtype: FloatName) -> str:
    if dtype == "float32":
        return "float"
    if dtype == "float64":
        return "double"
    raise ValueError(f"unsupported FFT dtype {dtype!r} (float32 or float64)")


def _check(n: int, prefix: str) -> None:
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"FFT length must be a positive integer, got {n!r}")
    if not prefix.isidentifier():
        raise ValueError(f"FFT prefix must be a C identifier, got {prefix!r}")


@dataclass
class _Chain:
    """Stage functions + tables + the call sequence of one Stockham transform."""

    tables: list[str]
    funcs: list[str]
    calls: list[str]
    radices: list[int]


def _stockham(
    prefix: str,
    n: int,
    radices: list[int],
    *,
    sign: int,
    t: str,
    src: tuple[Mode, str],
    dst: tuple[Mode, str],
    bufs: tuple[str, str],
    scale: float,
    tag: str,
) -> _Chain:
    """Stages from ``src`` (mode, pointer base) to ``dst`` through split buffers ``bufs`` (pointer bases)."""
    stages = stages_of(n, radices)
    chain = _Chain([], [], [], radices)
    cur = src
    for i, st in enumerate(stages):
        last = i == len(stages) - 1
        nxt: tuple[Mode, str] = dst if last else ("split", bufs[i % 2])
        fname = f"{prefix}_s{i}"
        tab, fn = stage_function(
            fname, st, sign=sign, t=t, src=cur[0], dst=nxt[0], scale=scale if last else 1.0, tag=tag
        )
        chain.tables.append(tab)
        chain.funcs.append(fn)
        chain.calls.append(f"{fname}({_args(cur)}, {_args(nxt)});")
        cur = nxt
    return chain


def _args(io: tuple[Mode, str]) -> str:
    mode, base = io
    return base if mode == "inter" else f"{base}r, {base}i"


def _split_decl(t: str, base: str, at: str, n: int) -> str:
    return f"{t} *restrict {base}r = work + {at}, *restrict {base}i = work + {at} + {n};"


def _complex_body(prefix: str, n: int, *, sign: int, t: str, scale: float, tag: str) -> tuple[str, list[str], str, int]:
    """(tables+helpers text, body lines, algorithm, work_len) of ``prefix(in, out, work)`` for a complex FFT."""
    if n == 1:
        s = "" if scale == 1.0 else f" * {lit(scale, t)}"
        return "", [f"out[0] = in[0]{s};", f"out[1] = in[1]{s};", "(void)work;"], "copy", 0
    radices = plan_radices(n)
    if radices is not None:
        ch = _stockham(
            prefix, n, radices, sign=sign, t=t, src=("inter", "in"), dst=("inter", "out"),
            bufs=("a", "b"), scale=scale, tag=tag,
        )  # fmt: skip
        nbuf = min(len(radices) - 1, 2)
        body = [_split_decl(t, "ab"[i], str(2 * n * i), n) for i in range(nbuf)]
        if nbuf == 0:
            body.append("(void)work;")
        algo = "stockham radices " + "x".join(map(str, radices))
        return "".join(ch.tables) + "\n".join(ch.funcs), body + ch.calls, algo, 2 * n * nbuf
    return _bluestein(prefix, n, sign=sign, t=t, scale=scale, tag=tag)


def _bluestein(prefix: str, n: int, *, sign: int, t: str, scale: float, tag: str) -> tuple[str, list[str], str, int]:
    m = 1 << (2 * n - 2).bit_length()  # smallest power of two >= 2n - 1
    k = np.arange(n, dtype=np.int64)
    cr, ci = unit_roots(k * k, 2 * n, sign)  # chirp c_k = e^(sign*πi k²/n)
    chirp = cr + 1j * ci
    b = np.zeros(m, dtype=np.complex128)  # b_j = conj(c_|j|), wrapped
    b[:n] = np.conj(chirp)
    b[m - n + 1 :] = np.conj(chirp[1:][::-1])
    bf = np.fft.fft(b) / m
    radices = plan_radices(m)
    assert radices is not None
    ch = _stockham(
        f"{prefix}_m", m, radices, sign=-1, t=t, src=("split", "a"), dst=("split", "c"),
        bufs=("b", "a"), scale=1.0, tag=tag,
    )  # fmt: skip
    # the chain reads a, ping-pongs b/a and writes c; c must differ from the buffer the last stage reads
    hdr = (
        f"/* {prefix}: Bluestein chirp c_k = e^({'+' if sign > 0 else '-'}πi·k²/{n}), re then im{tag} */\n"
        + table(t, f"{prefix}_chirp", [*map(float, cr), *map(float, ci)])
        + f"/* {prefix}: FFT_{m}(conj chirp, wrapped) / {m}, re then im{tag} */\n"
        + table(t, f"{prefix}_bf", [*map(float, bf.real), *map(float, bf.imag)])
    )
    cs = "" if scale == 1.0 else f" * {lit(scale, t)}"
    body = [
        _split_decl(t, "a", "0", m),
        _split_decl(t, "b", str(2 * m), m),
        _split_decl(t, "c", str(4 * m), m),
        "size_t k;",
        f"for (k = 0; k < {n}; k++) {{ /* a = x * chirp, zero padded to {m}{tag} */",
        f"    const {t} xr = in[2 * k], xi = in[2 * k + 1], wr = {prefix}_chirp[k], wi = {prefix}_chirp[{n} + k];",
        "    ar[k] = xr * wr - xi * wi;",
        "    ai[k] = xr * wi + xi * wr;",
        "}",
        f"for (k = {n}; k < {m}; k++) {{ ar[k] = 0; ai[k] = 0; }}",
        *ch.calls,
        f"for (k = 0; k < {m}; k++) {{ /* a = conj(C * BF): the inverse FFT as a forward one{tag} */",
        f"    const {t} ur = cr[k], ui = ci[k], vr = {prefix}_bf[k], vi = {prefix}_bf[{m} + k];",
        "    ar[k] = ur * vr - ui * vi;",
        "    ai[k] = -(ur * vi + ui * vr);",
        "}",
        *ch.calls,
        f"for (k = 0; k < {n}; k++) {{ /* X = chirp * conj(C){tag} */",
        f"    const {t} ur = cr[k], ui = -ci[k], wr = {prefix}_chirp[k], wi = {prefix}_chirp[{n} + k];",
        f"    out[2 * k] = (ur * wr - ui * wi){cs};",
        f"    out[2 * k + 1] = (ur * wi + ui * wr){cs};",
        "}",
    ]
    algo = f"bluestein M={m} (stockham radices {'x'.join(map(str, radices))})"
    return hdr + "".join(ch.tables) + "\n".join(ch.funcs), body, algo, 6 * m


def _function(prefix: str, t: str, doc: str, body: list[str]) -> tuple[str, str]:
    sig = f"void {prefix}(const {t} *restrict in, {t} *restrict out, {t} *restrict work)"
    text = "\n".join([f"/* {doc} */", f"static {sig}", "{", *("    " + b for b in body), "}", ""])
    return f"static {sig};\n", text


def _tag(src_line: int | None) -> str:
    return f" [src:{src_line}]" if src_line is not None else ""


def generate_fft(
    n: int, *, dtype: FloatName, inverse: bool = False, prefix: str, src_line: int | None = None
) -> FFTCode:
    """C for the ``n``-point complex FFT (``inverse``: ``numpy.fft.ifft``, scaled by 1/n) named ``prefix``."""
    _check(n, prefix)
    t = _ctype(dtype)
    tag = _tag(src_line)
    sign, scale = (1, 1.0 / n) if inverse else (-1, 1.0)
    helpers, body, algo, work = _complex_body(prefix, n, sign=sign, t=t, scale=scale, tag=tag)
    what = "inverse (1/n scaled)" if inverse else "forward (unscaled)"
    decl, fn = _function(prefix, t, f"{prefix}: {n}-point {what} complex FFT, {algo}{tag}", body)
    return FFTCode(prefix, n, t, "ifft" if inverse else "fft", algo, 2 * n, 2 * n, work, decl, helpers + "\n" + fn)


def generate_rfft(n: int, *, dtype: FloatName, prefix: str, src_line: int | None = None) -> FFTCode:
    """``numpy.fft.rfft``: ``n`` real values in, ``n//2 + 1`` interleaved complex bins out."""
    _check(n, prefix)
    t = _ctype(dtype)
    hf = lit(0.5, t)
    tag = _tag(src_line)
    bins = n // 2 + 1
    if n % 2:
        inner = generate_fft(n, dtype=dtype, prefix=f"{prefix}_c", src_line=src_line)
        body = [
            "size_t k;",
            f"{t} *restrict z = work, *restrict zf = work + {2 * n};",
            f"for (k = 0; k < {n}; k++) {{ z[2 * k] = in[k]; z[2 * k + 1] = 0; }}",
            f"{prefix}_c(z, zf, work + {4 * n});",
            f"for (k = 0; k < {2 * bins}; k++) out[k] = zf[k];",
        ]
        decl, fn = _function(prefix, t, f"{prefix}: {n}-point real FFT via a complex FFT{tag}", body)
        return FFTCode(prefix, n, t, "rfft", "complex " + inner.algorithm, n, 2 * bins, 4 * n + inner.work_len,
                       decl, inner.definitions + "\n" + fn)  # fmt: skip
    h = n // 2
    inner = generate_fft(h, dtype=dtype, prefix=f"{prefix}_c", src_line=src_line)
    wr, wi = unit_roots(np.arange(h + 1), n, -1)
    tabs = f"/* {prefix}: e^(-2πi·k/{n}), k = 0..{h}, re then im{tag} */\n" + table(
        t, f"{prefix}_w", [*map(float, wr), *map(float, wi)]
    )
    # X_k = E_k + w^k O_k with E = (Z_k + conj Z_{h-k})/2, O = -i (Z_k - conj Z_{h-k})/2
    body = [
        "size_t k;",
        f"{t} *restrict z = work;",
        f"{prefix}_c(in, z, work + {2 * h});",
        f"for (k = 0; k <= {h}; k++) {{ /* split the half-length spectrum{tag} */",
        f"    const size_t j = k % {h}, l = ({h} - k) % {h};",
        f"    const {t} er = {hf} * (z[2 * j] + z[2 * l]), ei = {hf} * (z[2 * j + 1] - z[2 * l + 1]);",
        f"    const {t} or_ = {hf} * (z[2 * j + 1] + z[2 * l + 1]), oi = {lit(-0.5, t)} * (z[2 * j] - z[2 * l]);",
        f"    const {t} wr = {prefix}_w[k], wi = {prefix}_w[{h + 1} + k];",
        "    out[2 * k] = er + (or_ * wr - oi * wi);",
        "    out[2 * k + 1] = ei + (or_ * wi + oi * wr);",
        "}",
    ]
    decl, fn = _function(prefix, t, f"{prefix}: {n}-point real FFT via a {h}-point complex FFT{tag}", body)
    return FFTCode(prefix, n, t, "rfft", f"half-length complex {inner.algorithm}", n, 2 * bins, 2 * h + inner.work_len,
                   decl, inner.definitions + "\n" + tabs + "\n" + fn)  # fmt: skip


def generate_irfft(n: int, *, dtype: FloatName, prefix: str, src_line: int | None = None) -> FFTCode:
    """``numpy.fft.irfft(X, n)``: ``n//2 + 1`` interleaved complex bins in, ``n`` real values out (1/n scaled)."""
    _check(n, prefix)
    t = _ctype(dtype)
    hf = lit(0.5, t)
    tag = _tag(src_line)
    bins = n // 2 + 1
    if n % 2 or n == 2:
        inner = generate_fft(n, dtype=dtype, inverse=True, prefix=f"{prefix}_c", src_line=src_line)
        last = n // 2 if n % 2 == 0 else -1  # the Nyquist bin (real part only)
        body = [
            "size_t k;",
            f"{t} *restrict z = work, *restrict zt = work + {2 * n};",
            "z[0] = in[0]; z[1] = 0;",
            f"for (k = 1; k < {bins}; k++) {{ z[2 * k] = in[2 * k]; z[2 * k + 1] = in[2 * k + 1]; }}",
            f"for (k = {bins}; k < {n}; k++) {{ /* Hermitian half{tag} */",
            f"    z[2 * k] = in[2 * ({n} - k)];",
            f"    z[2 * k + 1] = -in[2 * ({n} - k) + 1];",
            "}",
        ]
        if last > 0:
            body.append(f"z[{2 * last + 1}] = 0;")
        body += [f"{prefix}_c(z, zt, work + {4 * n});", f"for (k = 0; k < {n}; k++) out[k] = zt[2 * k];"]
        decl, fn = _function(prefix, t, f"{prefix}: {n}-point inverse real FFT via a complex FFT{tag}", body)
        return FFTCode(prefix, n, t, "irfft", "complex " + inner.algorithm, 2 * bins, n, 4 * n + inner.work_len,
                       decl, inner.definitions + "\n" + fn)  # fmt: skip
    h = n // 2
    inner = generate_fft(h, dtype=dtype, inverse=True, prefix=f"{prefix}_c", src_line=src_line)
    wr, wi = unit_roots(np.arange(h), n, 1)
    tabs = f"/* {prefix}: e^(+2πi·k/{n}), k = 0..{h - 1}, re then im{tag} */\n" + table(
        t, f"{prefix}_w", [*map(float, wr), *map(float, wi)]
    )
    # Z_k = E_k + i O_k, E = (X_k + conj X_{h-k})/2, O = (X_k - conj X_{h-k}) w^-k / 2; bins 0 and h: real parts
    body = [
        "size_t k;",
        f"{t} *restrict z = work;",
        f"z[0] = {hf} * (in[0] + in[{2 * h}]); z[1] = {hf} * (in[0] - in[{2 * h}]);",
        f"for (k = 1; k < {h}; k++) {{ /* merge into the half-length spectrum{tag} */",
        f"    const size_t l = {h} - k;",
        f"    const {t} er = {hf} * (in[2 * k] + in[2 * l]), ei = {hf} * (in[2 * k + 1] - in[2 * l + 1]);",
        f"    const {t} dr = {hf} * (in[2 * k] - in[2 * l]), di = {hf} * (in[2 * k + 1] + in[2 * l + 1]);",
        f"    const {t} wr = {prefix}_w[k], wi = {prefix}_w[{h} + k];",
        f"    const {t} or_ = dr * wr - di * wi, oi = dr * wi + di * wr;",
        "    z[2 * k] = er - oi;",
        "    z[2 * k + 1] = ei + or_;",
        "}",
        f"{prefix}_c(z, out, work + {2 * h});",
    ]
    decl, fn = _function(prefix, t, f"{prefix}: {n}-point inverse real FFT via a {h}-point complex FFT{tag}", body)
    return FFTCode(prefix, n, t, "irfft", f"half-length complex {inner.algorithm}", 2 * bins, n, 2 * h + inner.work_len,
                   decl, inner.definitions + "\n" + tabs + "\n" + fn)  # fmt: skip
