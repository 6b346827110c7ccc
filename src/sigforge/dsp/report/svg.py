"""A tiny line-plot renderer producing standalone SVG text (pure; no matplotlib).

Invariants:
    * Output is well-formed XML with one root ``<svg>`` carrying only the SVG namespace declaration; styling uses
      presentation attributes (``fill=``, ``stroke=``...) only, never ``style=`` attributes or ``<style>`` elements,
      scripts, links or any URL, so the file displays under a strict Content-Security-Policy.
    * Every piece of text (titles, labels, legends) is XML-escaped, ``://`` as ``&#58;//``.
    * Each trace is reduced to at most ``MAX_POINTS`` points (a min/max envelope, so peaks survive) and non-finite
      values are dropped, so files stay small whatever the signal length.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape as _xml_escape
from xml.sax.saxutils import quoteattr

import numpy as np
import numpy.typing as npt

MAX_POINTS = 1000
SVG_NS = "http://www.w3.org/2000/svg"  # a namespace name, never fetched
PALETTE = ("#1f5fbf", "#d9480f", "#2b8a3e", "#7048e8")
FONT = "DejaVu Sans, Arial, sans-serif"


@dataclass(frozen=True, slots=True)
class Trace:
    """One polyline: x and y of equal length (NaN/inf points are skipped)."""

    x: npt.NDArray[np.float64]
    y: npt.NDArray[np.float64]
    label: str
    color: str = PALETTE[0]
    dashed: bool = False
    width: float = 1.5


@dataclass(frozen=True, slots=True)
class Panel:
    """One set of axes; ``vlines`` are x positions of dotted markers (e.g. frame boundaries)."""

    title: str
    xlabel: str
    ylabel: str
    traces: Sequence[Trace]
    vlines: Sequence[float] = field(default_factory=tuple)
    ylim: tuple[float, float] | None = None


def escape(text: str) -> str:
    """XML-escape ``text``; ``://`` becomes ``&#58;//`` so no URL appears in the markup (it reads the same)."""
    return _xml_escape(text).replace("://", "&#58;//")


def envelope(x: npt.ArrayLike, y: npt.ArrayLike, max_points: int = MAX_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """Finite points of (x, y), reduced to at most ``max_points`` by keeping each bucket's min and max."""
    xa, ya = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    if xa.size <= max_points:
        return xa, ya
    buckets = max(max_points // 2, 1)
    edges = np.linspace(0, xa.size, buckets + 1).astype(int)
    idx: list[int] = []
    for lo, hi in itertools.pairwise(edges.tolist()):
        if hi <= lo:
            continue
        seg = ya[lo:hi]
        pair = sorted({lo + int(np.argmin(seg)), lo + int(np.argmax(seg))})
        idx.extend(pair)
    sel = np.asarray(idx[:max_points])
    return xa[sel], ya[sel]


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick positions (1, 2 or 5 times a power of ten) covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(count, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 5, 10) if m * mag >= raw)
    first = math.ceil(lo / step - 1e-9)
    ticks = [(first + i) * step for i in range(int((hi - lo) / step + 1e-9) + 2)]
    return [0.0 if abs(t) < step * 1e-9 else t for t in ticks if t <= hi + step * 1e-9]


def _fmt(v: float) -> str:
    return f"{v:.1f}".rstrip("0").rstrip(".")


def _limits(values: list[np.ndarray], pad: float) -> tuple[float, float]:
    finite = [v for v in values if v.size]
    if not finite:
        return 0.0, 1.0
    lo, hi = min(float(v.min()) for v in finite), max(float(v.max()) for v in finite)
    if hi <= lo:
        return lo - 1.0, hi + 1.0
    span = hi - lo
    return lo - pad * span, hi + pad * span


def _text(x: float, y: float, s: str, *, size: int = 11, anchor: str = "middle", extra: str = "") -> str:
    return (f'<text x="{_fmt(x)}" y="{_fmt(y)}" font-family={quoteattr(FONT)} font-size="{size}" '
            f'text-anchor="{anchor}" fill="#222"{extra}>{escape(s)}</text>')  # fmt: skip


def _panel(p: Panel, top: float, width: int, height: int) -> list[str]:
    left, right, ptop, bottom = 64.0, 16.0, top + 24.0, top + height - 36.0
    pw, ph = width - left - right, bottom - ptop
    pts = [envelope(t.x, t.y) for t in p.traces]
    x0, x1 = _limits([x for x, _ in pts], 0.0)
    y0, y1 = p.ylim if p.ylim else _limits([y for _, y in pts], 0.05)

    def sx(v: float) -> float:
        return left + (v - x0) / (x1 - x0) * pw

    def sy(v: float) -> float:
        return bottom - (min(max(v, y0), y1) - y0) / (y1 - y0) * ph

    out = [_text(left + pw / 2, top + 15, p.title, size=13, extra=' font-weight="bold"'),
           f'<rect x="{_fmt(left)}" y="{_fmt(ptop)}" width="{_fmt(pw)}" height="{_fmt(ph)}" fill="#fff" '
           'stroke="#888" stroke-width="1"/>']  # fmt: skip
    for t in nice_ticks(y0, y1):
        y = sy(t)
        out.append(f'<line x1="{_fmt(left)}" y1="{_fmt(y)}" x2="{_fmt(left + pw)}" y2="{_fmt(y)}" stroke="#e4e4e4"/>')
        out.append(_text(left - 5, y + 4, f"{t:g}", size=10, anchor="end"))
    for t in nice_ticks(x0, x1, 8):
        x = sx(t)
        out.append(f'<line x1="{_fmt(x)}" y1="{_fmt(bottom)}" x2="{_fmt(x)}" y2="{_fmt(bottom + 4)}" stroke="#888"/>')
        out.append(_text(x, bottom + 16, f"{t:g}", size=10))
    for v in p.vlines:
        if x0 <= v <= x1:
            x = sx(v)
            out.append(f'<line x1="{_fmt(x)}" y1="{_fmt(ptop)}" x2="{_fmt(x)}" y2="{_fmt(bottom)}" stroke="#999" '
                       'stroke-dasharray="2,3"/>')  # fmt: skip
    out.append(_text(left + pw / 2, bottom + 31, p.xlabel, size=11))
    out.append(_text(14, ptop + ph / 2, p.ylabel, size=11, extra=f' transform="rotate(-90 14 {_fmt(ptop + ph / 2)})"'))
    for i, (trace, (xs, ys)) in enumerate(zip(p.traces, pts, strict=True)):
        if xs.size:
            coords = " ".join(f"{_fmt(sx(float(a)))},{_fmt(sy(float(b)))}" for a, b in zip(xs, ys, strict=True))
            dash = ' stroke-dasharray="6,4"' if trace.dashed else ""
            out.append(f'<polyline points="{coords}" fill="none" stroke={quoteattr(trace.color)} '
                       f'stroke-width="{trace.width:g}"{dash}/>')  # fmt: skip
        ly = ptop + 14 + 14 * i
        out.append(f'<line x1="{_fmt(left + pw - 150)}" y1="{_fmt(ly - 4)}" x2="{_fmt(left + pw - 128)}" '
                   f'y2="{_fmt(ly - 4)}" stroke={quoteattr(trace.color)} stroke-width="2"/>')  # fmt: skip
        out.append(_text(left + pw - 124, ly, trace.label, size=10, anchor="start"))
    return out


def figure(title: str, panels: Sequence[Panel], *, width: int = 760, panel_height: int = 240) -> str:
    """A standalone SVG document with ``panels`` stacked vertically under ``title``."""
    height = 30 + panel_height * len(panels)
    body = [_text(width / 2, 20, title, size=14, extra=' font-weight="bold"')]
    for i, p in enumerate(panels):
        body += _panel(p, 30 + i * panel_height, width, panel_height)
    return (
        f'<svg xmlns="{SVG_NS}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">\n'
        f"<title>{escape(title)}</title>\n"
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fafafa"/>\n' + "\n".join(body) + "\n</svg>\n"
    )


def inline(svg: str) -> str:
    """The same drawing for embedding in HTML (the namespace declaration is implied there)."""
    return svg.replace(f' xmlns="{SVG_NS}"', "", 1)
