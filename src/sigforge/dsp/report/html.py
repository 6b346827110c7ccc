"""The offline ``report.html`` (pure): one self-contained page rendered from the report dict and its plots.

Invariants:
    * Self-contained and inert: no scripts, no external resources or URLs of any kind, one inline ``<style>``; a
      ``Content-Security-Policy`` meta tag forbids loading anything, so the page is safe to open from disk.
    * Every value taken from the report is HTML-escaped (and ``://`` written as ``&#58;//``, so even text holding
      a URL leaves none in the page source); plots are SVG produced by ``sigforge.dsp.report.svg``
      (already escaped) and inlined without their namespace declaration.
    * The page renders whatever subset of the report keys is present (missing sections are left out), so it never
      fails on a partial report.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape as _html_escape
from typing import Any

from sigforge.dsp.report.plots import Plot
from sigforge.dsp.report.svg import inline

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
STYLE = """
body { font-family: DejaVu Sans, Arial, sans-serif; margin: 2em auto; max-width: 70em; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ccc; }
.verdict { padding: .6em 1em; font-weight: bold; border-radius: 4px; }
.ok { background: #e6f4ea; color: #1e6b32; } .fail { background: #fdecea; color: #a61b1b; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ccc; padding: .25em .6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl { display: grid; grid-template-columns: max-content auto; gap: .2em 1em; } dt { font-weight: bold; }
figure { margin: 1em 0; } .wrap { overflow-x: auto; }
figcaption { font-size: .9em; color: #555; } code { font-size: .95em; }
"""


def escape(text: str) -> str:
    """HTML-escape ``text``; ``://`` becomes ``&#58;//`` so no URL appears in the page source (it reads the same)."""
    return _html_escape(text).replace("://", "&#58;//")


def _cell(v: Any) -> str:
    if v is None:
        return "<td>&mdash;</td>"
    if isinstance(v, bool):
        return f'<td class="{"ok" if v else "fail"}">{"yes" if v else "no"}</td>'
    if isinstance(v, float):
        return f'<td class="num">{escape(f"{v:.4g}")}</td>'
    if isinstance(v, int):
        return f'<td class="num">{v}</td>'
    return f"<td>{escape(str(v))}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f'<div class="wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _text(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _facts(pairs: Iterable[tuple[str, Any]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{escape(_text(v))}</dd>" for k, v in pairs if v is not None)
    return f"<dl>{items}</dl>"


def _outputs(report: dict[str, Any]) -> list[str]:
    parts: list[str] = []
    outputs = report.get("outputs") or []
    if outputs:
        parts.append("<h2>Thresholds</h2>")
        keys = ("max_rel_error", "min_snr_db", "abs_floor", "boundary_window", "bit_exact")
        thresholds = [(o.get("index"), o.get("thresholds") or {}) for o in outputs]
        rows = [[i, t.get("dtype"), *(_text(t.get(k)) for k in keys)] for i, t in thresholds]
        parts.append(_table(["output", "dtype", *keys], rows))
        parts.append(
            "<p>An output passes a vector when max |error| &le; max(max_rel_error &times; RMS of the golden output, "
            "abs_floor), the SNR meets min_snr_db where the relative term governs, and the same bound holds in the "
            "first boundary_window samples after every frame boundary.</p>"
        )
    cols = ("passed", "max_abs_error", "max_rel_error", "snr_db", "boundary_max_abs_error",
            "interior_max_abs_error", "bound", "worst_sample", "worst_frame", "problem")  # fmt: skip
    labels = ("passed", "max |error|", "max |error| / RMS", "SNR (dB)", "max |error| after frame boundaries",
              "max |error| elsewhere", "bound", "worst sample", "its frame", "problem")  # fmt: skip
    for o in outputs:
        label = f"Output {o.get('index')}: {o.get('name', '')} ({o.get('dtype', '?')}, {o.get('file', '')})"
        parts.append(f"<h2>{escape(label)}</h2>")
        parts.append(_table(["vector", *labels], [[v.get("vector"), *(v.get(c) for c in cols)]
                                                for v in o.get("vectors") or []]))  # fmt: skip
    return parts


def render_html(report: dict[str, Any], plots: Sequence[Plot]) -> str:
    """The complete ``report.html`` text for ``report`` (as written to ``report.json``) and its plots."""
    name = str(report.get("name", "artifact"))
    verified = bool(report.get("verified"))
    iface = report.get("interface") or {}
    inputs = iface.get("inputs") or [{}]
    parts = [
        f"<h1>sigforge verification report: {escape(name)}</h1>",
        f'<p class="verdict {"ok" if verified else "fail"}">{"VERIFIED" if verified else "NOT VERIFIED"}</p>',
        f"<p>{escape(str(report.get('summary', '')))}</p>",
        _facts([("target", report.get("target")), ("entry", iface.get("entry")),
                ("input dtype", inputs[0].get("dtype")), ("frame length", iface.get("frame_length")),
                ("sample rate", iface.get("sample_rate")), ("max abs error", report.get("max_abs_error")),
                ("report schema", report.get("schema")), ("sigforge", report.get("sigforge_version"))]),
    ]  # fmt: skip
    failures = report.get("failures") or []
    if failures:
        parts.append("<h2>Evidence of failure</h2><ul>")
        parts += [f"<li>output {escape(str(f.get('output')))} on vector {escape(str(f.get('vector')))}: "
                  f"{escape(str(f.get('problem')))}</li>" for f in failures]  # fmt: skip
        parts.append("</ul>")
    parts += _outputs(report)
    if plots:
        parts.append("<h2>Plots</h2>")
        parts += [f"<figure>{inline(p.svg)}<figcaption>{escape(p.caption)} (<code>{escape(p.file)}</code>)"
                  "</figcaption></figure>" for p in plots]  # fmt: skip
    vectors = report.get("vectors") or []
    if vectors:
        parts.append("<h2>Test vectors</h2>")
        parts.append(_table(["vector", "description", "frames", "input samples", "passed", "run (s)"],
                            [[v.get("name"), v.get("description"), v.get("frames"), v.get("samples_in"),
                              v.get("passed"), v.get("run_s")] for v in vectors]))  # fmt: skip
    trace = report.get("traceability") or []
    parts.append("<h2>Traceability</h2>")
    if trace:
        rows = [[t.get("source_line"), ", ".join(f"{g.get('file')}:{g.get('line')}" for g in t.get("generated", []))]
                for t in trace]  # fmt: skip
        parts.append(_table(["source line", "generated code (file:line)"], rows))
    else:
        parts.append("<p>The generated code carries no source-line markers.</p>")
    tool = report.get("toolchain") or {}
    parts.append("<h2>Toolchain</h2>")
    parts.append(_facts([("compiler", tool.get("cc")), ("version", tool.get("version")),
                         ("build", tool.get("build")), ("flags", tool.get("cflags")),
                         ("sandbox network", (report.get("sandbox") or {}).get("network"))]))  # fmt: skip
    timings = report.get("timings") or {}
    if timings:
        parts.append("<h2>Timings</h2>")
        parts.append(_table(["step", "seconds"], sorted(timings.items())))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n'
        f"<title>{escape(name)}: sigforge verification report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        + "\n".join(parts)
        + "\n</body>\n</html>\n"
    )
