"""Host-C backend: a verified IR graph in, a stand-alone C99 artifact out (header, source, harness, Makefile).

Invariants:
    * Reads only the IR. User text never reaches the generated files: comments carry generated descriptions and
      source line/column numbers only, and the artifact name is reduced to a plain C identifier.
    * C99 + libm only. Float32 samples and float32 accumulation: the FIR loops run taps-outer/outputs-inner so
      each output accumulates in tap order (deterministic without -ffast-math) and the inner loop is a contiguous
      multiply-add gcc vectorises at -O2. Build with -ffp-contract=off (the Makefile does) for the verified bits.
    * Frame sizes are compile-time constants. Every frame starts on a kept sample (the IR rate rules require
      frame lengths divisible by each decimation), so the decimation phase is the constant 0 and only the FIR
      delay lines are state.
    * A polyphase FIR (decimation D > 1) keeps ``H = ceil(L/D)*D`` past samples, splits history+frame into D
      phases and computes only the kept outputs: tap ``i`` reads phase ``(D - i % D) % D`` at offset
      ``ceil(L/D) - (i + phase) / D`` (see ``_polyphase_offsets``).
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from sigforge import __version__
from sigforge.dsp.backends._c_text import CFLAGS_USED, HARNESS_C, MAKEFILE
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.ir import Graph, Node, Op, describe
from sigforge.dsp.types import DType
from sigforge.errors import UnsupportedTarget

TARGET = "host-c"
_C_KEYWORDS = {
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "main",
    "harness",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class CArtifact:
    """What the backend produces: the artifact name, its files (relative path -> bytes) and its interface."""

    name: str
    files: dict[str, bytes]
    interface: dict[str, Any]


def c_identifier(name: str) -> str:
    """A safe C identifier for ``name`` (ASCII, no leading underscore, not a keyword)."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_")
    if not ident or ident[0].isdigit():
        ident = f"dsp_{ident}".rstrip("_")
    if ident in _C_KEYWORDS or keyword.iskeyword(ident):
        ident = f"{ident}_dsp"
    return ident[:48]


def _flit(value: float) -> str:
    """A C float literal that round-trips to the same float32."""
    return f"{float(np.float32(value)):.9e}f"


def _table(ctype: str, name: str, values: list[str]) -> str:
    rows = [", ".join(values[i : i + 6]) for i in range(0, len(values), 6)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(values)}] = {{\n    {body}\n}};\n"


def _where(node: Node) -> str:
    return f" (from source line {node.loc.line}, column {node.loc.column})" if node.loc else ""


def _polyphase_offsets(taps: int, decimation: int, outputs: int) -> tuple[int, int, list[int]]:
    """History length H, phase length M and, per tap, its flat offset into the ``[D][M]`` phase array."""
    q = -(-taps // decimation)
    history, per_phase = q * decimation, q + outputs
    offsets = []
    for i in range(taps):
        phase = (decimation - i % decimation) % decimation
        offsets.append(phase * per_phase + q - (i + phase) // decimation)
    return history, per_phase, offsets


class _Emitter:
    def __init__(self, graph: Graph, name: str) -> None:
        self.g, self.name = graph, name
        self.state: list[str] = []
        self.tables: list[str] = []
        self.body: list[str] = []
        self.reset: list[str] = []

    def dest(self, node: Node) -> str:
        readers = self.g.consumers(node.id)
        if len(readers) == 1 and readers[0].op is Op.OUTPUT:
            return "out"
        self.state.append(f"    float {node.id}_out[{node.out.samples}];")
        return f"s->{node.id}_out"

    def src(self, node_id: str) -> str:
        node = self.g.node(node_id)
        if node.op is Op.INPUT:
            return "in"
        return (
            "out"
            if len(self.g.consumers(node_id)) == 1 and self.g.consumers(node_id)[0].op is Op.OUTPUT
            else (f"s->{node_id}_out")
        )

    def fir(self, node: Node, p: FirParams) -> None:
        n_in = self.g.node(node.inputs[0]).out.samples
        n_out, length, d = node.out.samples, len(p.taps), p.decimation
        src, dst, nid = self.src(node.inputs[0]), self.dest(node), node.id
        self.tables.append(_table("float", f"{nid}_taps", [_flit(t) for t in p.taps]))
        b = self.body
        b.append(f"    /* {nid}: {describe(node)}{_where(node)} */")
        if d == 1:
            history = length - 1
            b.append(f"    memcpy(&s->{nid}_buf[{history}], {src}, sizeof(float) * {n_in});")
            b.append(f"    for (k = 0; k < {n_out}; k++) {dst}[k] = 0.0f;")
            b.append(f"    for (i = 0; i < {length}; i++) {{")
            b.append(f"        const float h = {nid}_taps[i];")
            b.append(f"        const float *xp = &s->{nid}_buf[{history} - i];")
        else:
            history, per_phase, offsets = _polyphase_offsets(length, d, n_out)
            self.tables.append(_table("int", f"{nid}_off", [str(o) for o in offsets]))
            self.state.append(f"    float {nid}_ph[{d * per_phase}]; /* {d} phases of {per_phase} samples */")
            b.append(f"    memcpy(&s->{nid}_buf[{history}], {src}, sizeof(float) * {n_in});")
            b.append(f"    for (t = 0; t < {d}; t++) /* split history + frame into {d} phases */")
            b.append(
                f"        for (m = 0; m < {per_phase}; m++) s->{nid}_ph[t * {per_phase} + m] = "
                f"s->{nid}_buf[m * {d} + t];"
            )
            b.append(f"    for (k = 0; k < {n_out}; k++) {dst}[k] = 0.0f;")
            b.append(f"    for (i = 0; i < {length}; i++) {{")
            b.append(f"        const float h = {nid}_taps[i];")
            b.append(f"        const float *xp = &s->{nid}_ph[{nid}_off[i]];")
        b.append(f"        for (k = 0; k < {n_out}; k++) {dst}[k] += h * xp[k];")
        b.append("    }")
        if history:
            b.append(f"    memmove(s->{nid}_buf, &s->{nid}_buf[{n_in}], sizeof(float) * {history});")
            self.reset.append(f"    memset(s->{nid}_buf, 0, sizeof s->{nid}_buf);")
        self.state.append(f"    float {nid}_buf[{history + n_in}]; /* {history} past samples + one frame */")

    def simple(self, node: Node) -> None:
        src, dst = self.src(node.inputs[0]), self.dest(node)
        p = node.params
        self.body.append(f"    /* {node.id}: {describe(node)}{_where(node)} */")
        if isinstance(p, GainParams):
            self.body.append(f"    for (k = 0; k < {node.out.samples}; k++) {dst}[k] = {_flit(p.gain)} * {src}[k];")
        elif isinstance(p, DecimateParams):
            self.body.append(f"    for (k = 0; k < {node.out.samples}; k++) {dst}[k] = {src}[k * {p.factor}];")
        else:  # output port reading the input or a shared buffer
            self.body.append(f"    memcpy(out, {src}, sizeof(float) * {node.out.samples});")

    def emit(self) -> None:
        for node in self.g.nodes:
            if isinstance(node.params, FirParams):
                self.fir(node, node.params)
            elif node.op in (Op.GAIN, Op.DECIMATE) or (node.op is Op.OUTPUT and self.src(node.inputs[0]) != "out"):
                self.simple(node)


def _check_supported(graph: Graph) -> None:
    if len(graph.inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedTarget(
            f"{TARGET} supports one input and one output, got {len(graph.inputs)} and {len(graph.outputs)}"
        )
    for node in graph.nodes:
        if node.out.dtype is not DType.FLOAT32:
            raise UnsupportedTarget(
                f"{TARGET} supports float32 streams only for now, node {node.id} carries {node.out.dtype}",
                location=node.loc,
            )


def generate(graph: Graph) -> CArtifact:
    """Generate the host-C artifact for a verified graph.

    Raises:
        UnsupportedTarget: the graph uses something this backend cannot emit yet.
    """
    _check_supported(graph)
    name = c_identifier(graph.name)
    up = name.upper()
    em = _Emitter(graph, name)
    em.emit()
    (inp,), (outp,) = graph.inputs, graph.outputs
    n_in, n_out = inp.out.samples, outp.out.samples
    state = em.state or ["    unsigned char unused; /* C forbids empty structs */"]
    header = "\n".join([
        f"/* Generated by sigforge {__version__} from `{name}` (do not edit). */",
        f"#ifndef {up}_H", f"#define {up}_H", "",
        f"#define {up}_FRAME_IN {n_in} /* input samples per frame */",
        f"#define {up}_FRAME_OUT {n_out} /* output samples per frame */", "",
        "/* Allocate one state per stream (it holds delay lines and scratch); init before the first frame. */",
        f"typedef struct {name}_state {{", *state, f"}} {name}_state;", "",
        f"void {name}_init({name}_state *s);",
        f"void {name}_reset({name}_state *s);",
        f"/* in: {n_in} samples, out: {n_out} samples; in and out must not overlap. */",
        f"void {name}_process({name}_state *s, const float *restrict in, float *restrict out);", "",
        f"#endif /* {up}_H */", "",
    ])  # fmt: skip
    loops = "    size_t i, k, m, t;\n    (void)i; (void)k; (void)m; (void)t;\n"
    source = "\n".join([
        f"/* Generated by sigforge {__version__} (do not edit). C99 + libm; build with -ffp-contract=off. */",
        "#include <stddef.h>", "#include <string.h>", "", f'#include "{name}.h"', "",
        *em.tables,
        f"void {name}_reset({name}_state *s)", "{", "    memset(s, 0, sizeof *s);", "}", "",
        f"void {name}_init({name}_state *s)", "{", f"    {name}_reset(s);", "}", "",
        f"void {name}_process({name}_state *s, const float *restrict in, float *restrict out)", "{",
        loops + "    (void)s; (void)in;", *em.body, "}", "",
    ])  # fmt: skip
    files = {
        f"{name}.h": header.encode(),
        f"{name}.c": source.encode(),
        "harness.c": HARNESS_C.replace("@NAME_UC@", up).replace("@NAME@", name).encode(),
        "Makefile": MAKEFILE.replace("@NAME@", name).encode(),
    }
    interface = {
        "schema": "sigforge.interface/1",
        "target": TARGET,
        "name": name,
        "entry": graph.name,
        "frame_length": n_in,
        "inputs": [_port(inp)],
        "outputs": [_port(outp)],
        "functions": {"state": f"{name}_state", "init": f"{name}_init", "reset": f"{name}_reset",
                      "process": f"{name}_process"},
        "header": f"{name}.h",
        "build": {"command": "make", "output": "build/harness", "cflags": CFLAGS_USED},
        "harness": {"usage": "build/harness IN.bin OUT.bin", "format": "raw little-endian float32, whole frames"},
    }  # fmt: skip
    return CArtifact(name, files, interface)


def _port(node: Node) -> dict[str, Any]:
    assert not isinstance(node.params, (FirParams, DecimateParams, GainParams))
    rate = node.out.rate
    return {
        "name": node.params.name,
        "dtype": node.out.dtype.value,
        "samples_per_frame": node.out.samples,
        "rate_factor": f"{rate.numerator}/{rate.denominator}" if rate.denominator != 1 else str(rate.numerator),
    }


def interface_json(interface: dict[str, Any]) -> bytes:
    """Canonical JSON bytes for ``interface.json``."""
    return (json.dumps(interface, indent=2, sort_keys=True) + "\n").encode()
