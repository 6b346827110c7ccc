"""Report rendering: SVG plots, the offline HTML page, traceability and report assembly (all pure)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

from sigforge.dsp.report.assemble import VectorRuns, json_safe, output_ports
from sigforge.dsp.report.html import render_html
from sigforge.dsp.report.plots import Plot, error_spectrum_plot, magnitude_plot, signal_plot
from sigforge.dsp.report.svg import MAX_POINTS, SVG_NS, Panel, Trace, envelope, figure, nice_ticks
from sigforge.dsp.report.trace import traceability
from sigforge.dsp.verify import generate_vectors, tolerances_for
from sigforge.errors import IntegrityError

NASTY = '<script>alert("x")</script> & "quotes" \'single\' http://evil.example/x.svg'
URL = re.compile(r"(?i)(https?:|ftp:|file:|data:|javascript:|//[a-z])")


def _plots() -> list[Plot]:
    rng = np.random.default_rng(3)
    x = np.cos(0.001 * np.arange(6000.0) ** 2)
    y = np.convolve(x, np.ones(8) / 8)[: x.size]
    imp = np.ones(8) / 8
    return [
        signal_plot(x, y, y + 1e-7, in_frame=3000, out_frame=3000, vector=NASTY),
        magnitude_plot(np.r_[imp, np.zeros(100)], np.r_[imp, np.zeros(100)], fs=48000.0),
        magnitude_plot(np.zeros(64), None, fs=None),  # all-zero response: drawn at the floor, no crash
        error_spectrum_plot(y, y + rng.normal(0, 1e-7, y.size), fs=None, vector="uniform"),
        error_spectrum_plot(y, y, fs=None, vector="exact"),  # zero error
        signal_plot(
            np.exp(0.1j * np.arange(300)),
            np.exp(0.1j * np.arange(75)),
            None,
            in_frame=100,
            out_frame=25,
            vector="complex",
        ),
    ]


def _svg_checks(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # well-formed
    assert root.tag == f"{{{SVG_NS}}}svg"
    for el in root.iter():
        assert "style" not in el.attrib and not el.tag.endswith("}style") and not el.tag.endswith("}script")
        assert not any(k.endswith("href") for k in el.attrib)
        for value in el.attrib.values():
            assert not URL.search(value), value
    assert "style=" not in svg and "<style" not in svg and "<script" not in svg
    raw = svg.replace(f'xmlns="{SVG_NS}"', "")
    assert "http://" not in raw and "https://" not in raw and "javascript:" not in raw
    return root


def test_plots_are_well_formed_inert_svg_with_escaped_text() -> None:
    for plot in _plots():
        root = _svg_checks(plot.svg)
        assert plot.file == f"plots/{plot.name}.svg"
        for line in root.iter(f"{{{SVG_NS}}}polyline"):
            points = line.attrib["points"].split()
            assert 2 <= len(points) <= MAX_POINTS
            assert all(np.isfinite([float(c) for p in points for c in p.split(",")]))
        assert len(plot.svg) < 120_000
    texts = "".join(ET.fromstring(_plots()[0].svg).itertext())
    assert NASTY in texts  # the text survives, escaped in the markup


def test_envelope_keeps_extremes_and_order() -> None:
    x = np.arange(100_000.0)
    y = np.sin(x / 1000.0)
    y[54321] = 7.0
    y[12] = np.nan
    xs, ys = envelope(x, y)
    assert xs.size <= MAX_POINTS and np.all(np.diff(xs) > 0) and ys.max() == 7.0 and np.isfinite(ys).all()
    assert envelope([1.0, 2.0], [3.0, 4.0])[1].tolist() == [3.0, 4.0]
    assert nice_ticks(0, 1) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    assert nice_ticks(-210, -10) == [-200, -150, -100, -50]


def test_figure_escapes_labels() -> None:
    svg = figure(NASTY, [Panel(NASTY, NASTY, NASTY, [Trace(np.arange(3.0), np.ones(3), NASTY, color="#000")])])
    _svg_checks(svg)
    assert "<script>" not in svg and "&lt;script&gt;" in svg


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs.extend(attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def _report(**over: Any) -> dict[str, Any]:
    report: dict[str, Any] = {
        "schema": "sigforge.report/2", "name": NASTY, "target": "host-c", "verified": False,
        "summary": NASTY, "max_abs_error": 0.5, "interface": {"inputs": [{"dtype": "float32"}], "frame_length": 8},
        "outputs": [{"index": 0, "name": NASTY, "dtype": "float32", "file": "OUT.bin",
                     "thresholds": tolerances_for("float32").as_dict(),
                     "vectors": [{"vector": "uniform", "passed": False, "max_abs_error": 0.5, "snr_db": None,
                                  "problem": NASTY}]}],
        "failures": [{"output": 0, "vector": "uniform", "problem": NASTY}],
        "vectors": [{"name": "uniform", "description": NASTY, "frames": 3, "passed": False}],
        "traceability": [{"source_line": 7, "generated": [{"file": "a.c", "line": 12}, {"file": "a.h", "line": 3}]}],
        "toolchain": {"cc": "/usr/bin/gcc", "version": NASTY, "cflags": "-O2"},
        "timings": {"total_s": 0.25},
    }  # fmt: skip
    report.update(over)
    return report


def test_report_html_is_self_contained_and_inert() -> None:
    html = render_html(_report(), _plots())
    parser = _Collector()
    parser.feed(html)
    parser.close()
    assert "script" not in parser.tags and "link" not in parser.tags and "iframe" not in parser.tags
    assert parser.tags.count("svg") == len(_plots()) and parser.tags.count("style") == 1
    assert not any(name in ("src", "href") or name.startswith("on") for name, _ in parser.attrs)
    assert "http://" not in html and "https://" not in html and "<script" not in html
    text = "".join(parser.text)
    assert NASTY in text and "NOT VERIFIED" in text and "Evidence of failure" in text
    assert "a.c:12, a.h:3" in text and "0.0001" in text  # the float32 bound is stated
    assert "Content-Security-Policy" in html and "default-src 'none'" in html


def test_report_html_survives_a_minimal_report() -> None:
    html = render_html({"verified": True}, [])
    assert "VERIFIED" in html and "no source-line markers" in html


C_SOURCE = b"""/* f: the whole algorithm [src:4] */
void f_process(void)
{
    /* FIR taps loop [src:6] [src:7] */
    for (;;) {}
    /* again line 6 [src:6] */
}
"""


def test_traceability_maps_source_lines_to_generated_lines() -> None:
    files = {
        "f.c": C_SOURCE,
        "f.h": b"#ifndef F_H\n/* state of f [src:4] */\n#endif\n",
        "harness.c": b"int main(void) { return 0; } /* no tokens */\n",
        "interface.json": b'{"note": "[src:99]"}',  # not C: ignored
        "Makefile": b"# [src:98]\n",
        "bad.c": b"\xff\xfe [src:12]\n",  # not UTF-8: still scanned
    }
    assert traceability(files) == [
        {"source_line": 4, "generated": [{"file": "f.c", "line": 1}, {"file": "f.h", "line": 2}]},
        {"source_line": 6, "generated": [{"file": "f.c", "line": 4}, {"file": "f.c", "line": 6}]},
        {"source_line": 7, "generated": [{"file": "f.c", "line": 4}]},
        {"source_line": 12, "generated": [{"file": "bad.c", "line": 1}]},
    ]
    assert traceability({"g.c": b"int x;\n"}) == []


def _iface(*outputs: dict[str, Any]) -> dict[str, Any]:
    return {"frame_length": 8, "inputs": [{"dtype": "float64"}], "outputs": list(outputs)}


def test_output_ports_defaults_and_fail_closed() -> None:
    tol = tolerances_for("float64")
    ports = output_ports(_iface({"dtype": "float64", "samples_per_frame": 8},
                                {"dtype": "complex128", "samples_per_frame": 4, "name": "iq"},
                                {"dtype": "int16", "samples_per_frame": 2, "file": "OUT.fixed.bin"}), tol)  # fmt: skip
    assert [p.file for p in ports] == ["OUT.bin", "OUT.1.bin", "OUT.fixed.bin"]
    assert ports[0].tolerances == tol and ports[2].tolerances.bit_exact and ports[1].name == "iq"
    bad = [
        _iface(),
        _iface({"dtype": "float16", "samples_per_frame": 8}),
        _iface({"dtype": "float32", "samples_per_frame": 0}),
        _iface({"dtype": "float32"}),
        _iface({"dtype": "float32", "samples_per_frame": 8, "file": "../OUT.bin"}),
        _iface({"dtype": "float32", "samples_per_frame": 8, "file": "x.bin"}),
        _iface(
            {"dtype": "float32", "samples_per_frame": 8},
            {"dtype": "float32", "samples_per_frame": 8, "file": "OUT.bin"},
        ),
    ]
    for iface in bad:
        with pytest.raises(IntegrityError):
            output_ports(iface, tol)


def test_vector_runs_point_at_the_failing_output() -> None:
    tol = tolerances_for("float64")
    ports = output_ports(_iface({"dtype": "float64", "samples_per_frame": 8},
                                {"dtype": "float64", "samples_per_frame": 4}), tol)  # fmt: skip
    runs = VectorRuns(ports)
    for vec in generate_vectors(8, dtype="float64")[:3]:
        ref0, ref1 = vec.samples * 2, vec.samples[::2]
        bad1 = ref1 + (1e-3 if vec.name == "gaussian" else 0.0)
        runs.add(vec, [ref0, bad1], [ref0, ref1], 0.01)
    assert not runs.verified
    assert [(f["output"], f["vector"]) for f in runs.failures] == [(1, "gaussian")]
    row = runs.rows[1]
    assert row["name"] == "gaussian" and row["output"] == 1 and not row["passed"]
    assert runs.rows[0]["passed"] and runs.rows[0]["output"] in (0, 1)
    assert "output 1" in runs.summary(tol) and "'gaussian'" in runs.summary(tol)
    outs = runs.outputs_report()
    assert outs[0]["passed"] and not outs[1]["passed"] and len(outs[1]["vectors"]) == 3
    vec = generate_vectors(8, dtype="float64")[0]
    runs.add(vec, [vec.samples, "harness wrote no OUT.1.bin for output 1"], [vec.samples, vec.samples[::2]], 0.0)
    assert runs.rows[-1]["problem"].startswith("harness wrote no") and runs.rows[-1]["output"] == 1
    assert json_safe(runs.outputs_report())[1]["max_abs_error"] is None  # inf -> null
    with pytest.raises(IntegrityError, match="golden model returned 1 outputs"):
        runs.add(vec, [vec.samples], [vec.samples], 0.0)
