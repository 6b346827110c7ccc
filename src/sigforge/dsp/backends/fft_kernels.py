"""C text of Stockham FFT stages (used by :mod:`sigforge.dsp.backends.fft_c`; pure, no I/O).

One stage of radix ``r`` on a transform of current length ``n = r*m`` with stride ``s`` (``s*n`` = the full size)
computes, for ``p < m`` and ``q < s``::

    y[q + s*(r*p + j)] = w^(j*p) * sum_k x[q + s*(p + k*m)] * W^(j*k)      w = e^(sg·2πi/n), W = e^(sg·2πi/r)

(sg = -1 forward, +1 inverse); the next stage runs on ``n' = m`` with ``s' = r*s``. After the last stage (m = 1)
the output is in natural order (autosort: no bit reversal). The loops are written so that gcc vectorises the ``q``
loop when ``s`` is large and, after fully unrolling the constant-trip ``q`` loop, the ``p`` loop when ``s`` is
small. Twiddles are per stage, split into real and imaginary rows ``[2*(r-1)][m]`` so that a vectorised ``p``
loop reads them contiguously. Data are either split (``*r``/``*i`` arrays, used between stages) or interleaved
(``re, im`` pairs, used only for the caller's input and output).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

Mode = Literal["split", "inter"]


def lit(value: float, t: str) -> str:
    """A C literal of type ``t`` (``float`` or ``double``) that round-trips to the rounded value."""
    if t == "double":
        return repr(float(value))
    return f"{float(np.float32(value)):.9e}f"


def table(t: str, name: str, values: list[float], width: int = 4) -> str:
    vals = [lit(v, t) for v in values]
    rows = [", ".join(vals[i : i + width]) for i in range(0, len(vals), width)]
    body = ",\n    ".join(rows)
    return f"static const {t} {name}[{len(vals)}] = {{\n    {body}\n}};\n"


def unit_roots(num: np.ndarray, den: int, sign: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sign*sin of 2π·num/den in float64, with ``num`` reduced exactly modulo ``den`` first."""
    ang = 2.0 * np.pi * (np.asarray(num, dtype=np.int64) % den).astype(np.float64) / den
    return np.cos(ang), sign * np.sin(ang)


@dataclass(frozen=True)
class Stage:
    radix: int
    s: int
    m: int


def plan_radices(n: int) -> list[int] | None:
    """Radices for a mixed-radix Stockham of ``n`` (4s, then a 2, then 3, 5, 7), or None if another prime divides."""
    rest, odd = n, []
    twos = 0
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    for p in (3, 5, 7):
        while rest % p == 0:
            rest //= p
            odd.append(p)
    if rest != 1:
        return None
    return [4] * (twos // 2) + [2] * (twos % 2) + odd


def stages_of(n: int, radices: list[int]) -> list[Stage]:
    out, s, cur = [], 1, n
    for r in radices:
        cur //= r
        out.append(Stage(r, s, cur))
        s *= r
    return out


def _cmul(dst: str, *, ar: str, ai: str, wr: str, wi: str, t: str) -> list[str]:
    return [f"const {t} {dst}r = {ar} * {wr} - {ai} * {wi};", f"const {t} {dst}i = {ar} * {wi} + {ai} * {wr};"]


def _butterfly(r: int, sign: int, t: str) -> list[str]:
    """Lines computing ``b{j}r, b{j}i`` (the r-point DFT, no twiddle) from ``a{k}r, a{k}i``."""
    if r == 1:
        return [f"const {t} b0r = a0r, b0i = a0i;"]
    if r == 2:
        return [f"const {t} b0r = a0r + a1r, b0i = a0i + a1i;", f"const {t} b1r = a0r - a1r, b1i = a0i - a1i;"]
    if r == 4:
        # d = sign*i*(a1 - a3): (x + iy)*(sign*i) = -sign*y + i*sign*x
        dr, di = ("(a1i - a3i)", "-(a1r - a3r)") if sign < 0 else ("-(a1i - a3i)", "(a1r - a3r)")
        return [
            f"const {t} t0r = a0r + a2r, t0i = a0i + a2i, t1r = a0r - a2r, t1i = a0i - a2i;",
            f"const {t} t2r = a1r + a3r, t2i = a1i + a3i, t3r = {dr}, t3i = {di};",
            f"const {t} b0r = t0r + t2r, b0i = t0i + t2i, b2r = t0r - t2r, b2i = t0i - t2i;",
            f"const {t} b1r = t1r + t3r, b1i = t1i + t3i, b3r = t1r - t3r, b3i = t1i - t3i;",
        ]
    # odd radix: y_j = a0 + sum_k (a_k + a_{r-k}) cos(2πjk/r) + sign*i*(a_k - a_{r-k}) sin(2πjk/r)
    h = (r - 1) // 2
    lines = [
        f"const {t} u{k}r = a{k}r + a{r - k}r, u{k}i = a{k}i + a{r - k}i, "
        f"v{k}r = a{k}r - a{r - k}r, v{k}i = a{k}i - a{r - k}i;"
        for k in range(1, h + 1)
    ]
    lines.append(f"const {t} b0r = a0r{''.join(f' + u{k}r' for k in range(1, h + 1))}, "
                 f"b0i = a0i{''.join(f' + u{k}i' for k in range(1, h + 1))};")  # fmt: skip
    for j in range(1, h + 1):
        cr = " + ".join(f"{lit(math.cos(2 * math.pi * j * k / r), t)} * u{k}r" for k in range(1, h + 1))
        ci = " + ".join(f"{lit(math.cos(2 * math.pi * j * k / r), t)} * u{k}i" for k in range(1, h + 1))
        sr = " + ".join(f"{lit(math.sin(2 * math.pi * j * k / r), t)} * v{k}i" for k in range(1, h + 1))
        si = " + ".join(f"{lit(math.sin(2 * math.pi * j * k / r), t)} * v{k}r" for k in range(1, h + 1))
        # sign*i*(S_r + i S_i) = -sign*S_i + i*sign*S_r, with S = sum sin * v
        lines.append(f"const {t} c{j}r = a0r + {cr}, c{j}i = a0i + {ci}, s{j}r = {sr}, s{j}i = {si};")
        plus, minus = ("+", "-") if sign < 0 else ("-", "+")
        lines.append(
            f"const {t} b{j}r = c{j}r {plus} s{j}r, b{j}i = c{j}i {minus} s{j}i, "
            f"b{r - j}r = c{j}r {minus} s{j}r, b{r - j}i = c{j}i {plus} s{j}i;"
        )
    return lines


def _io(mode: Mode, name: str, idx: str) -> tuple[str, str]:
    if mode == "inter":
        return f"{name}[2 * ({idx})]", f"{name}[2 * ({idx}) + 1]"
    return f"{name}r[{idx}]", f"{name}i[{idx}]"


def params(mode: Mode, name: str, t: str, const: bool) -> str:
    c = "const " if const else ""
    if mode == "inter":
        return f"{c}{t} *restrict {name}"
    return f"{c}{t} *restrict {name}r, {c}{t} *restrict {name}i"


def stage_function(
    fname: str,
    st: Stage,
    *,
    sign: int,
    t: str,
    src: Mode,
    dst: Mode,
    scale: float,
    tag: str,
) -> tuple[str, str]:
    """(twiddle table text, function text) of one stage ``fname(x..., y...)``."""
    r, s, m = st.radix, st.s, st.m
    tw_name = f"{fname}_tw"
    tables = ""
    if m > 1 and r > 1:
        rows: list[float] = []
        re_rows, im_rows = [], []
        for j in range(1, r):
            c, sn = unit_roots(np.arange(m) * j, r * m, sign)
            re_rows.append(c)
            im_rows.append(sn)
        for row in [*re_rows, *im_rows]:
            rows.extend(float(v) for v in row)
        pm = "+" if sign > 0 else "-"
        tables = f"/* {fname}: twiddles e^({pm}2πi·j·p/{r * m}), rows re j=1..{r - 1} then im{tag} */\n"
        tables += table(t, tw_name, rows)
    body: list[str] = []
    ind = "        " if s > 1 else "    "
    p_term = f"{s} * p" if s > 1 else "p"
    for k in range(r):
        idx = f"q + {p_term} + {s * k * m}" if s > 1 else f"{p_term} + {k * m}"
        re, im = _io(src, "x", idx)
        body.append(f"const {t} a{k}r = {re}, a{k}i = {im};")
    body += _butterfly(r, sign, t)
    scl = "" if scale == 1.0 else f" * {lit(scale, t)}"
    for j in range(r):
        idx = f"q + {s * r} * p + {s * j}" if s > 1 else f"{r} * p + {j}"
        yr, yi = _io(dst, "y", idx)
        if m > 1 and j > 0:
            wr, wi = f"w{j}r", f"w{j}i"
            body += _cmul(f"d{j}", ar=f"b{j}r", ai=f"b{j}i", wr=wr, wi=wi, t=t)
            body.append(f"{yr} = d{j}r{scl}; {yi} = d{j}i{scl};")
        else:
            body.append(f"{yr} = b{j}r{scl}; {yi} = b{j}i{scl};")
    lines = [
        f"/* {fname}: radix-{r} Stockham stage, stride {s}, {m} twiddle groups{tag} */",
        f"static void {fname}({params(src, 'x', t, True)}, {params(dst, 'y', t, False)})",
        "{",
        "    size_t p;" if s == 1 else "    size_t p, q;",
        f"    for (p = 0; p < {m}; p++) {{",
    ]
    if m > 1 and r > 1:
        lines += [
            f"        const {t} w{j}r = {tw_name}[{(j - 1) * m} + p], w{j}i = {tw_name}[{(r - 1 + j - 1) * m} + p];"
            for j in range(1, r)
        ]
    if s > 1:
        lines.append(f"        for (q = 0; q < {s}; q++) {{")
    lines += [ind + "    " + b for b in body]
    if s > 1:
        lines.append("        }")
    lines += ["    }", "}", ""]
    return tables, "\n".join(lines)
