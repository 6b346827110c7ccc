"""Host-C backend: a verified IR graph in, a stand-alone C99 artifact out (header, source, harness, Makefile).

Invariants:
    * Reads only the IR. User text never reaches the generated files: comments carry generated descriptions and
      source line/column numbers only, and the artifact name is reduced to a plain C identifier.
    * C99 + libm only. One scalar type per graph: float32/complex64 streams use ``float``, float64/complex128
      ``double`` (block-level numerics are in ``_c_blocks``). A complex stream is an array of interleaved
      (re, im) scalars, 2 per sample: the memory layout of C99 ``float complex``/``double complex`` arrays and of
      the raw files, so callers may pass ``float complex *`` cast to ``float *``. ``<complex.h>`` is not used:
      an FIR on a complex stream is then the real FIR kernel over 2N scalars with taps 2 apart (contiguous, so
      gcc vectorises it), and complex products are written out as NumPy computes them, without C99's
      ``__mulsc3`` inf/NaN recovery (which NumPy does not do and which blocks vectorisation).
    * Build flags (``interface.json`` "build.cflags"; the Makefile keeps ``CC`` and ``CFLAGS`` overridable):
      ``-O3 -march=native -ffp-contract=fast`` by default, plus the fixed ``-std=c99 -Wall -Wextra``. host-c is
      built and run on the same machine, so ``-march=native`` is sound (override CFLAGS for a portable binary).
      FMA contraction is allowed because float targets are verified against the float64 golden model with a
      tolerance, never bit-exactly, and a fused multiply-add rounds once where mul+add rounds twice. Measured on
      the 64-tap float32 FIR (bench/bench_translator.py, one core, EPYC with AVX-512): the old taps-outer loop at
      -O2 -ffp-contract=off ran 83 Msamples/s; the register-blocked kernel runs ~125 at -O2 -ffp-contract=off,
      ~165 at -O3 and ~230 at the default flags.
    * Every generated function carries ``[src:N]`` (N = the entry function's ``def`` line; blocks carry their
      own construct's line), which the report builder parses to map source lines to generated lines.
    * The input frame size is a compile-time constant. Where it is a multiple of every decimation (and of
      ``down / gcd(up, down)`` of every ``upfirdn``), every stream is fixed: every frame starts on a kept sample,
      the decimation phase is the constant 0 and the code is the constant-count code. Otherwise the streams after
      the first such stage are variable (``types.StreamType``): their blocks keep the phase in the state struct,
      compute each frame's count at run time (``n_<node>`` locals) and fill output buffers of the maximal size only
      as far as that count. ``NAME_process`` returns the samples written to output 0 and ``NAME_out_count(s, i)``
      gives output i's; ``NAME_FRAME_OUT*`` is each output's most per frame (the buffer size).
"""

from __future__ import annotations

import json
import keyword
import re
from dataclasses import dataclass
from typing import Any

from sigforge import __version__
from sigforge.dsp.backends._c_blocks import lanes
from sigforge.dsp.backends._c_frame import FrameEmitter
from sigforge.dsp.backends._c_map import MAP_HELPERS
from sigforge.dsp.backends._c_text import CFLAGS_USED, MAKEFILE, harness_c
from sigforge.dsp.blocks.elementwise import MapParams
from sigforge.dsp.blocks.ports import PortParams
from sigforge.dsp.ir import Graph, Node, frame_multiple
from sigforge.dsp.types import DType
from sigforge.errors import UnsupportedTarget

TARGET = "host-c"
SUPPORTED_DTYPES = (DType.FLOAT32, DType.FLOAT64, DType.COMPLEX64, DType.COMPLEX128)
_SCALAR = {DType.FLOAT32: DType.FLOAT32, DType.COMPLEX64: DType.FLOAT32, DType.FLOAT64: DType.FLOAT64,
           DType.COMPLEX128: DType.FLOAT64}  # fmt: skip
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


def _check_supported(graph: Graph) -> DType:
    """The graph's real scalar type (float32 or float64): every stream must have that precision."""
    if len(graph.inputs) != 1 or not graph.outputs:
        raise UnsupportedTarget(
            f"{TARGET} supports one input and one or more outputs, got {len(graph.inputs)} and {len(graph.outputs)}"
        )
    scalar = _SCALAR.get(graph.inputs[0].out.dtype)
    for node in graph.nodes:
        if _SCALAR.get(node.out.dtype) is not scalar or scalar is None:
            raise UnsupportedTarget(
                f"{TARGET} supports float32/complex64 or float64/complex128 streams (one precision per graph) for "
                f"now, node {node.id} carries {node.out.dtype}",
                location=node.loc,
            )
    assert scalar is not None
    return scalar


def generate(graph: Graph, *, input_dtype: DType | None = None) -> CArtifact:
    """Generate the host-C artifact for a verified graph.

    Args:
        graph: the graph (its input stream float32 when ``input_dtype`` is int16).
        input_dtype: the harness's and ``interface.json``'s input format when it differs from the graph's input
            stream; only ``DType.INT16`` over a float32 graph: the harness converts each sample to ``float``
            (exact) and ``process`` takes ``float`` samples as for float32 input.

    Raises:
        UnsupportedTarget: the graph uses something this backend cannot emit yet.
    """
    dtype = _check_supported(graph)
    port_dtype = graph.inputs[0].out.dtype if input_dtype is None else input_dtype
    if port_dtype is not graph.inputs[0].out.dtype and not (
        port_dtype is DType.INT16 and graph.inputs[0].out.dtype is DType.FLOAT32
    ):
        raise UnsupportedTarget(f"{TARGET} reads {port_dtype} input only into float32 streams for now")
    name = c_identifier(graph.name)
    up = name.upper()
    em = FrameEmitter(graph, dtype)
    em.emit()
    t = em.t
    (inp,), outs = graph.inputs, graph.outputs
    n_in = inp.out.samples
    line = str(outs[0].loc.line if outs[0].loc else 0)
    tag = f"[src:{line}]"
    ptrs = [em.out_ptr[o.id] for o in outs]
    out_macros = [f"#define {up}_FRAME_OUT{'' if i == 0 else i} {o.out.samples} /* {_frame_doc(o, i)} */"
                  for i, o in enumerate(outs)]  # fmt: skip
    out_params = "".join(f", {t} *restrict {p}" for p in ptrs)
    out_doc = ", ".join(f"{p}: {_count(o)}" for p, o in zip(ptrs, outs, strict=True))
    counts = [em.count(o.id) for o in outs]
    state = [*em.state, f"    size_t written[{len(outs)}]; /* samples the last process() wrote to each output */"]
    varies = any(o.out.variable for o in outs)
    returns = (
        "returns the samples written to out (each output's count: "
        f"{name}_out_count){'; the counts vary from frame to frame' if varies else ', always the same'}"
    )
    header = "\n".join([
        f"/* Generated by sigforge {__version__} from `{name}` (do not edit). {tag} */",
        f"#ifndef {up}_H", f"#define {up}_H", "",
        f"#define {up}_FRAME_IN {n_in} /* input samples per frame */", *out_macros,
        f"typedef {t} {name}_sample; /* {dtype.value} scalars; a complex sample is two: re, im */", "",
        f"/* Allocate one state per stream (delay lines, filter state, scratch); init before the first frame. {tag} */",
        f"typedef struct {name}_state {{", *state, f"}} {name}_state;", "",
        f"/* Zero every state; call once before the first frame. {tag} */",
        f"void {name}_init({name}_state *s);",
        f"/* Forget the past (as after init), e.g. between independent signals. {tag} */",
        f"void {name}_reset({name}_state *s);",
        f"/* One frame. in: {_count(inp)}, {out_doc}; no two buffers may overlap; {returns}. {tag} */",
        f"size_t {name}_process({name}_state *s, const {t} *restrict in{out_params});",
        f"/* Samples (a complex sample counts once) the last {name}_process call wrote to output i (0 before the",
        f"   first call); at most {up}_FRAME_OUT for output 0, {up}_FRAME_OUTi for output i. {tag} */",
        f"size_t {name}_out_count(const {name}_state *s, int i);", "",
        f"#endif /* {up}_H */", "",
    ])  # fmt: skip
    loops = "    size_t i, j, k, m, t;\n    (void)i; (void)j; (void)k; (void)m; (void)t;\n"
    helpers = [f"{MAP_HELPERS[h]} /* NumPy semantics (NaN propagates) {tag} */" for h in sorted(em.helpers)]
    helpers += [""] if helpers else []
    source = "\n".join([
        f"/* Generated by sigforge {__version__} (do not edit). C99 + libm; see the Makefile for flags. {tag} */",
        "#include <math.h>", "#include <stddef.h>", "#include <string.h>", "", f'#include "{name}.h"', "",
        *(_NO_CONTRACT if _has_complex_product(graph) else []),
        *helpers, *em.tables,
        f"/* {tag} */", f"void {name}_reset({name}_state *s)", "{", "    memset(s, 0, sizeof *s);", "}", "",
        f"/* {tag} */", f"void {name}_init({name}_state *s)", "{", f"    {name}_reset(s);", "}", "",
        f"/* {tag} */", f"size_t {name}_out_count(const {name}_state *s, int i)", "{",
        f"    return i >= 0 && i < {len(outs)} ? s->written[i] : 0;", "}", "",
        f"/* One frame of `{name}`. {tag} */",
        f"size_t {name}_process({name}_state *s, const {t} *restrict in{out_params})", "{",
        loops + "    (void)s; (void)in;", *em.body,
        *(f"    s->written[{i}] = {c};" for i, c in enumerate(counts)), f"    return {counts[0]};", "}", "",
    ])  # fmt: skip
    nbytes = 8 if dtype is DType.FLOAT64 else 4
    in_bytes = 2 if port_dtype is DType.INT16 else nbytes
    harness = harness_c(name=name, line=line, in_port=(t, port_dtype.value, _scalars(inp), in_bytes),
                        outs=[(t, _scalars(o), nbytes, lanes(o)) for o in outs])  # fmt: skip
    files = {
        f"{name}.h": header.encode(),
        f"{name}.c": source.encode(),
        "harness.c": harness.encode(),
        "Makefile": MAKEFILE.replace("@NAME@", name).encode(),
    }
    interface = {
        "schema": "sigforge.interface/1",
        "target": TARGET,
        "name": name,
        "entry": graph.name,
        "frame_length": n_in,
        "frame_multiple": frame_multiple(graph),
        "inputs": [{**_port(inp), "dtype": port_dtype.value}],
        "outputs": [{**_port(o), "file": output_file(i)} for i, o in enumerate(outs)],
        "functions": {"state": f"{name}_state", "init": f"{name}_init", "reset": f"{name}_reset",
                      "process": f"{name}_process"},
        "header": f"{name}.h",
        "build": {"command": "make", "output": "build/harness", "cflags": CFLAGS_USED},
        "process_returns": "samples written to output 0; NAME_out_count(state, i) gives output i's",
        "harness": {"usage": "build/harness IN.bin OUT.bin",
                    "format": "raw little-endian samples of each port's dtype, whole frames in; out, exactly the "
                              "samples each frame produced, concatenated; output i > 0 goes to OUT.i.bin (OUT's "
                              "final .bin replaced, else .i appended)"},
    }  # fmt: skip
    return CArtifact(name, files, interface)


# A complex product's parts, e.g. ar*bi + ai*br, are exactly 0 for symmetric operands; an FMA leaves a rounding
# residue of either sign there, which np.angle turns into +pi or -pi (a 2*pi error). Graphs with a complex
# product therefore compile without FP contraction (GCC: optimize attribute pragma; clang: fp contract pragma).
_NO_CONTRACT = [
    "/* complex products: no FMA contraction, so ar*bi + ai*br stays exactly 0 where NumPy's is */",
    "#if defined(__clang__)", "#pragma clang fp contract(off)", "#elif defined(__GNUC__)",
    '#pragma GCC optimize("fp-contract=off")', "#endif", "",
]  # fmt: skip


def _has_complex_product(graph: Graph) -> bool:
    """Whether some map reads or makes complex values (conservative: any complex elementwise code)."""
    maps = [n for n in graph.nodes if isinstance(n.params, MapParams)]
    return any(graph.node(i).out.dtype.is_complex or n.out.dtype.is_complex for n in maps for i in n.inputs)


def _scalars(node: Node) -> int:
    return node.out.samples * (2 if node.out.dtype.is_complex else 1)


def _count(node: Node) -> str:
    n = node.out.samples
    most = "at most " if node.out.variable else ""
    return f"{most}{n} complex samples ({2 * n} interleaved re, im)" if node.out.dtype.is_complex else \
        f"{most}{n} samples"  # fmt: skip


def _frame_doc(node: Node, index: int) -> str:
    if not node.out.variable:
        return f"samples per frame of output {index}"
    r = node.out.rate
    return f"most samples per frame of output {index}; the count varies, {r} of the input's on average"


def output_file(index: int, base: str = "OUT.bin") -> str:
    """Where the harness writes output ``index`` when called with ``base`` as its output path."""
    if index == 0:
        return base
    return f"{base[:-4]}.{index}.bin" if base.endswith(".bin") else f"{base}.{index}"


def _port(node: Node) -> dict[str, Any]:
    assert isinstance(node.params, PortParams)
    rate = node.out.rate
    return {
        "name": node.params.name,
        "dtype": node.out.dtype.value,
        "samples_per_frame": node.out.samples,
        "samples_per_frame_varies": node.out.variable,
        "rate_factor": f"{rate.numerator}/{rate.denominator}" if rate.denominator != 1 else str(rate.numerator),
    }


def interface_json(interface: dict[str, Any]) -> bytes:
    """Canonical JSON bytes for ``interface.json``."""
    return (json.dumps(interface, indent=2, sort_keys=True) + "\n").encode()
