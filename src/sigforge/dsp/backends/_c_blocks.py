"""Host-C code for each IR block: the body of ``NAME_process`` and the state each block keeps.

Invariants:
    * ``T`` is the scalar type of the whole graph (``float`` for float32/complex64, ``double`` for
      float64/complex128); a complex stream holds ``2 * samples`` interleaved (re, im) scalars (``lanes``), a
      real gain, decimation or FIR treats them as two real streams, a complex IIR runs two independent
      recursions (re, im) with the same coefficients and ``double`` state. Each FIR is a
      static ``NODE_fir`` kernel, register-blocked: a block of ``block_size`` outputs (256 bytes) is held in an
      accumulator array the compiler keeps in vector registers while the taps loop runs, so outputs are not
      re-loaded and stored per tap; the innermost loop is a contiguous multiply-add it vectorises. Each output
      still sums its taps in order 0..L-1 (deterministic without -ffast-math; with FMA contraction each step
      rounds once instead of twice). The remainder of a frame is one more block of constant size.
    * IIR sections run in transposed direct form II with ``double`` coefficients, state and accumulators whatever
      ``T`` is: float32 recursions would put rounding noise at the poles' gain (up to 1/(1-|p|)), far above the
      float32 tolerance for narrow filters. One loop runs each sample through every section (unrolled, state in
      locals, no work buffer), so sections of one sample and neighbouring samples overlap in the out-of-order core;
      ``z0 = b1*v + z1 - a1*y`` keeps the loop-carried path per section at two multiply-adds (6th-order butter,
      float32: 75 -> 320 Msamples/s, bench/bench_translator.py). A complex stream interleaves its re and im.
    * Elementwise maps (code in ``_c_map``) are evaluated in ``double`` and rounded to ``T`` once, matching the
      golden model
      to one rounding; ``sf_max``/``sf_min``/``sf_sign`` propagate NaN like NumPy.
    * Every block comment and every function carries ``[src:N]``, N the 1-based user source line (traceability).
    * A polyphase FIR (decimation D > 1) keeps ``H = ceil(L/D)*D`` past samples, splits history+frame into D
      phases and computes only the kept outputs: tap ``i`` reads phase ``(D - i % D) % D`` at offset
      ``ceil(L/D) - (i + phase) / D`` (see ``polyphase_offsets``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sigforge.dsp.backends._c_map import MapCode, dlit
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.delay import DelayParams
from sigforge.dsp.blocks.elementwise import MapParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.blocks.iir import IirParams
from sigforge.dsp.blocks.upfirdn import UpfirdnParams
from sigforge.dsp.ir import Graph, Node, Op, describe
from sigforge.dsp.types import DType


def sample_lit(value: float, dtype: DType) -> str:
    """A literal of the sample type that round-trips to the same value of that type."""
    if dtype is DType.FLOAT64:
        return f"{float(value):.17e}"
    return f"{float(np.float32(value)):.9e}f"


def src_tag(node: Node) -> str:
    """The traceability marker (and a human location) of a node."""
    if node.loc is None:
        return ""
    return f" (from source line {node.loc.line}, column {node.loc.column}) [src:{node.loc.line}]"


def table(ctype: str, name: str, values: list[str], width: int = 6) -> str:
    rows = [", ".join(values[i : i + width]) for i in range(0, len(values), width)]
    body = ",\n    ".join(rows)
    return f"static const {ctype} {name}[{len(values)}] = {{\n    {body}\n}};\n"


def polyphase_offsets(taps: int, decimation: int, outputs: int) -> tuple[int, int, list[int]]:
    """History length H, phase length M and, per tap, its flat offset into the ``[D][M]`` phase array."""
    q = -(-taps // decimation)
    history, per_phase = q * decimation, q + outputs
    offsets = []
    for i in range(taps):
        phase = (decimation - i % decimation) % decimation
        offsets.append(phase * per_phase + q - (i + phase) // decimation)
    return history, per_phase, offsets


def block_size(dtype: DType) -> int:
    """Outputs per register block: 256 bytes of accumulators (4 AVX-512, 8 AVX or 16 SSE/NEON registers)."""
    return 32 if dtype is DType.FLOAT64 else 64


def fir_kernel(nid: str, t: str, tag: str, *, taps: int, n_out: int | None, x_at: str, blk: int) -> str:
    """The register-blocked FIR function of node ``nid``.

    ``y[k] = sum_i taps[i] * x[X(i) + k]`` with ``X(i)`` the C expression ``x_at`` (``H - i`` for a plain FIR,
    the phase offset table for a polyphase one). Outputs go in blocks of ``blk`` accumulators that stay in
    registers while the taps loop runs, then one tail block of the constant remainder; each output still sums
    its taps in order 0..L-1. ``n_out`` None (a variable-length stream): the function takes the count ``n`` at run
    time, runs the same full blocks and then one tail block of ``n % blk`` outputs.
    """
    if n_out is None:
        full_head, tail = f"for (k = 0; k + {blk} <= n; k += {blk})", [("if (k < n)", "n - k")]
        lines = [
            f"/* {nid}: FIR kernel, {blk} outputs per register block, taps outer, each output sums taps in order; "
            f"n outputs (they vary from frame to frame){tag} */",
            f"static void {nid}_fir(const {t} *restrict x, {t} *restrict y, size_t n)",
        ]
        blocks = [(full_head, str(blk), str(blk)), *((h, f"{blk}", r) for h, r in tail)]
    else:
        full, rest = n_out // blk * blk, n_out % blk
        lines = [
            f"/* {nid}: FIR kernel, {blk} outputs per register block, taps outer, each output sums taps in order"
            f"{tag} */",
            f"static void {nid}_fir(const {t} *restrict x, {t} *restrict y)",
        ]
        blocks = [(f"for (k = 0; k < {full}; k += {blk})", str(blk), str(blk))] if full else []
        blocks += [(f"for (k = {full}; k < {n_out}; k += {rest})", str(rest), str(rest))] if rest else []
    lines += ["{", "    size_t i, k, m;"]
    for head, size, used in blocks:
        lines += [
            f"    {head} {{ /* {used} outputs in registers{tag} */",
            *([f"        const size_t r = {used};"] if used != size else []),
            f"        {t} acc[{size}];",
            f"        for (m = 0; m < {used if used == size else 'r'}; m++) acc[m] = 0;",
            f"        for (i = 0; i < {taps}; i++) {{ /* one tap over the block{tag} */",
            f"            const {t} h = {nid}_taps[i];",
            f"            const {t} *xp = &x[{x_at} + k];",
            f"            for (m = 0; m < {used if used == size else 'r'}; m++) acc[m] += h * xp[m];",
            "        }",
            f"        for (m = 0; m < {used if used == size else 'r'}; m++) y[k + m] = acc[m];",
            "    }",
        ]
    return "\n".join([*lines, "}", ""])


def lanes(node: Node) -> int:
    """Scalars per sample on a node's output: 2 (re, im interleaved) for complex streams, else 1."""
    return 2 if node.out.dtype.is_complex else 1


class Emitter:
    """Collects state fields, constant tables, process-body lines and reset lines for a graph."""

    def __init__(self, graph: Graph, dtype: DType) -> None:
        self.g, self.dtype = graph, dtype
        outs = graph.outputs
        # the process() parameter of each output port: `out` for a single output, else out0, out1, ...
        self.out_ptr = {o.id: ("out" if len(outs) == 1 else f"out{i}") for i, o in enumerate(outs)}
        self.t = "double" if dtype is DType.FLOAT64 else "float"
        self.state: list[str] = []
        self.tables: list[str] = []
        self.body: list[str] = []
        self.helpers: set[str] = set()

    def _to_output(self, node_id: str) -> str | None:
        """The output pointer ``node_id`` writes directly (its only reader is an output port), else None."""
        readers = self.g.consumers(node_id)
        return self.out_ptr[readers[0].id] if len(readers) == 1 and readers[0].op is Op.OUTPUT else None

    def dest(self, node: Node) -> str:
        ptr = self._to_output(node.id)
        if ptr is not None:
            return ptr
        self.state.append(f"    {self.t} {node.id}_out[{lanes(node) * node.out.samples}];")
        return f"s->{node.id}_out"

    def count(self, node_id: str) -> str:
        """C expression of the samples ``node_id`` carries in this frame: a constant for a fixed stream; for a
        variable one the local ``n_<id>`` of the node that decides it (decimation, polyphase FIR, upfirdn), which
        ``process`` computes before its first use (elementwise nodes, IIRs, delays, gains and ports keep their
        input's count)."""
        node = self.g.node(node_id)
        if not node.out.variable:
            return str(node.out.samples)
        p = node.params
        if isinstance(p, (DecimateParams, UpfirdnParams)) or (isinstance(p, FirParams) and p.decimation > 1):
            return f"n_{node_id}"
        return self.count(node.inputs[0])

    def scalars(self, node_id: str) -> str:
        """C expression of the scalars (``lanes`` x samples) ``node_id`` carries in this frame."""
        node, n = self.g.node(node_id), self.count(node_id)
        if not node.out.variable:
            return str(lanes(node) * node.out.samples)
        return n if lanes(node) == 1 else f"2 * {n}"

    def src(self, node_id: str) -> str:
        if self.g.node(node_id).op is Op.INPUT:
            return "in"
        return self._to_output(node_id) or f"s->{node_id}_out"

    def fir(self, node: Node, p: FirParams) -> None:
        """FIR, polyphase when ``decimation > 1``. On a variable-length output the decimation phase ``P`` (the
        frame index of the next kept output) is state: the phases are split from ``P`` on, the kernel computes the
        ``n`` kept outputs, and ``P`` becomes ``P + n * D - n_in``. With a fixed output ``P`` is always 0 and the
        code is the constant-size one."""
        t, nid, tag, ln = self.t, node.id, src_tag(node), lanes(node)
        n_in = self.g.node(node.inputs[0]).out.samples  # the most per frame when the input is variable
        n_out, length, d = node.out.samples, len(p.taps), p.decimation
        variable, phased = node.out.variable, node.out.variable and d > 1
        src, dst = self.src(node.inputs[0]), self.dest(node)
        cin, cout = self.scalars(node.inputs[0]), self.count(node.id)
        self.tables.append(table(t, f"{nid}_taps", [sample_lit(v, self.dtype) for v in p.taps]))
        history = length - 1
        if d > 1:
            history, per_phase, offsets = polyphase_offsets(length, d, n_out)
            self.tables.append(table("int", f"{nid}_off", [str(ln * o) for o in offsets]))
            self.state.append(f"    {t} {nid}_ph[{ln * d * per_phase}]; /* {d} phases of {per_phase} samples */")
            xs, x_at = f"s->{nid}_ph", f"{nid}_off[i]"
        else:
            xs, x_at = f"s->{nid}_buf", f"{history} - i" if ln == 1 else f"{ln} * ({history} - i)"
        kernel = fir_kernel(nid, t, tag, taps=length, n_out=None if variable else ln * n_out, x_at=x_at,
                            blk=block_size(self.dtype))  # fmt: skip
        self.tables.append(kernel)  # complex: the same kernel over interleaved (re, im) scalars, taps 2 apart
        b = self.body
        b.append(f"    /* {nid}: {describe(node)}{', complex (re, im interleaved)' if ln == 2 else ''}"
                 f"{', samples per frame vary: phase carried across frames' if phased else ''}{tag} */")  # fmt: skip
        b.append(f"    memcpy(&s->{nid}_buf[{ln * history}], {src}, sizeof({t}) * {cin});")
        base = ""
        if phased:
            n_src = self.count(node.inputs[0])
            b.append(f"    const size_t p_{nid} = s->{nid}_phase; /* frame index of the next kept output{tag} */")
            b.append(f"    const size_t {cout} = {n_src} > p_{nid} ? ({n_src} - p_{nid} + {d - 1}) / {d} : 0;")
            base, rows = f"p_{nid} + ", f"{-(-length // d)} + {cout}"
        elif d > 1:
            rows = str(per_phase)
        if d > 1:
            b.append(f"    for (t = 0; t < {d}; t++) {{ /* split history + frame into {d} phases{tag} */")
            for c in range(ln):
                b.append(f"        for (m = 0; m < {rows}; m++) s->{nid}_ph[{ln} * (t * {per_phase} + m) + {c}] = "
                         f"s->{nid}_buf[{ln} * ({base}m * {d} + t) + {c}];")  # fmt: skip
            b.append("    }")
        count_arg = "" if not variable else f", {ln} * {cout}" if ln == 2 else f", {cout}"
        b.append(f"    {nid}_fir({xs}, {dst}{count_arg});")
        if history:
            b.append(f"    memmove(s->{nid}_buf, &s->{nid}_buf[{cin}], sizeof({t}) * {ln * history});")
        if phased:
            b.append(f"    s->{nid}_phase = p_{nid} + {cout} * {d} - {self.count(node.inputs[0])};")
            self.state.append(f"    size_t {nid}_phase; /* index in the next frame of its first kept output */")
        slack = d if phased else 0  # the phase split may read up to D - 1 samples past the frame (never used)
        self.state.append(f"    {t} {nid}_buf[{ln * (history + n_in + slack)}]; /* {history} past samples + one "
                          "frame */")  # fmt: skip

    def iir(self, node: Node, p: IirParams) -> None:
        if lanes(node) == 2:
            self.iir_complex(node, p)
            return
        nid, n, sections, tag = node.id, self.count(node.id), len(p.sections), src_tag(node)
        src, dst = self.src(node.inputs[0]), self.dest(node)
        self._sos_table(nid, p)
        self.state.append(f"    double {nid}_z[{sections}][2]; /* transposed DF-II state per section */")
        z = [(f"z{j}a", f"z{j}b") for j in range(sections)]
        self.body += [
            f"    {{ /* {nid}: {describe(node)}, transposed direct form II, double state, sections per sample{tag} */",
            *self._iir_state(nid, z, "load"),
            f"        for (k = 0; k < {n}; k++) {{ /* one sample through all {sections} section(s){tag} */",
            f"            double v = (double){src}[k], y;",
            *self._iir_sections(nid, z, "v", "y"),
            f"            {dst}[k] = ({self.t})v;",
            "        }",
            *self._iir_state(nid, z, "store"),
            "    }",
        ]

    @staticmethod
    def _iir_state(nid: str, z: Sequence[tuple[str, ...]], how: str) -> list[str]:
        """Copy each section's state between ``s->NID_z[j]`` and the locals ``z[j]`` (``how``: load or store)."""
        pairs = [(f"s->{nid}_z[{j}][{c}]", name) for j, names in enumerate(z) for c, name in enumerate(names)]
        if how == "load":
            return [f"        double {name} = {field};" for field, name in pairs]
        return [f"        {field} = {name};" for field, name in pairs]

    @staticmethod
    def _iir_sections(nid: str, z: Sequence[tuple[str, ...]], v: str, y: str, part: int = 0) -> list[str]:
        """One sample ``v`` through every section in turn (``v`` ends as the output): the transposed DF-II update.

        ``z[j][2 * part]``, ``z[j][2 * part + 1]`` are section j's state for this recursion. ``b1*v + z1`` does not
        depend on ``y``, so the loop-carried path per section is two multiply-adds (y, then z0); sections of one
        sample and of neighbouring samples overlap in the out-of-order core (the per-section loop serialised them).
        """
        lines = []
        for j, names in enumerate(z):
            z0, z1, c = names[2 * part], names[2 * part + 1], f"{nid}_sos[{j}]"
            lines += [
                f"            {y} = {c}[0] * {v} + {z0};",
                f"            {z0} = {c}[1] * {v} + {z1} - {c}[3] * {y};",
                f"            {z1} = {c}[2] * {v} - {c}[4] * {y};",
                f"            {v} = {y};",
            ]
        return lines

    def _sos_table(self, nid: str, p: IirParams) -> None:
        """The sections' coefficients as a constant table (a0 is 1 after normalisation, so it is left out)."""
        rows = [", ".join(dlit(v) for v in (s[0], s[1], s[2], s[4], s[5])) for s in p.sections]
        head = f"static const double {nid}_sos[{len(p.sections)}][5] = {{ /* b0 b1 b2 a1 a2 per section */\n"
        self.tables.append(head + ",\n".join(f"    {{{r}}}" for r in rows) + "\n};\n")

    def iir_complex(self, node: Node, p: IirParams) -> None:
        """Real-coefficient IIR on a complex stream: two independent recursions (re, im) in one loop."""
        nid, n, sections, tag = node.id, self.count(node.id), len(p.sections), src_tag(node)
        src, dst = self.src(node.inputs[0]), self.dest(node)
        self._sos_table(nid, p)
        self.state.append(
            f"    double {nid}_z[{sections}][4]; /* transposed DF-II state per section: re, re, im, im */"
        )
        z = [(f"z{j}a", f"z{j}b", f"u{j}a", f"u{j}b") for j in range(sections)]
        re, im = self._iir_sections(nid, z, "v", "y"), self._iir_sections(nid, z, "vi", "yi", 1)
        interleaved = [line for pair in zip(re, im, strict=True) for line in pair]  # re and im alternate: ILP
        self.body += [
            f"    {{ /* {nid}: {describe(node)}, complex (re, im alike), transposed DF-II, double state{tag} */",
            *self._iir_state(nid, z, "load"),
            f"        for (k = 0; k < {n}; k++) {{ /* re and im: two independent recursions, interleaved{tag} */",
            f"            double v = (double){src}[2 * k], vi = (double){src}[2 * k + 1], y, yi;",
            *interleaved,
            f"            {dst}[2 * k] = ({self.t})v;",
            f"            {dst}[2 * k + 1] = ({self.t})vi;",
            "        }",
            *self._iir_state(nid, z, "store"),
            "    }",
        ]

    def delay(self, node: Node, p: DelayParams) -> None:
        nid, ln, t, n = node.id, lanes(node), self.t, node.out.samples
        src, dst, keep = self.src(node.inputs[0]), self.dest(node), lanes(node) * p.count
        self.state.append(f"    {t} {nid}_past[{keep}]; /* the last {p.count} sample(s), zero after reset */")
        if node.out.variable:  # a frame may bring fewer than `count` samples (even none)
            c = self.scalars(node.id)
            self.body += [
                f"    /* {nid}: {describe(node)}, samples per frame vary{src_tag(node)} */",
                f"    if ({c} >= {keep}) {{",
                f"        memcpy({dst}, s->{nid}_past, sizeof({t}) * {keep});",
                f"        memcpy(&{dst}[{keep}], {src}, sizeof({t}) * ({c} - {keep}));",
                f"        memcpy(s->{nid}_past, &{src}[{c} - {keep}], sizeof({t}) * {keep});",
                "    } else { /* output the oldest kept samples, shift, keep the new ones at the end */",
                f"        memcpy({dst}, s->{nid}_past, sizeof({t}) * {c});",
                f"        memmove(s->{nid}_past, &s->{nid}_past[{c}], sizeof({t}) * ({keep} - {c}));",
                f"        memcpy(&s->{nid}_past[{keep} - {c}], {src}, sizeof({t}) * {c});",
                "    }",
            ]
            return
        self.body += [
            f"    /* {nid}: {describe(node)}{src_tag(node)} */",
            f"    memcpy({dst}, s->{nid}_past, sizeof({t}) * {keep});",
            f"    memcpy(&{dst}[{keep}], {src}, sizeof({t}) * {ln * n - keep});",
            f"    memcpy(s->{nid}_past, &{src}[{ln * n - keep}], sizeof({t}) * {keep});",
        ]

    def simple(self, node: Node) -> None:
        srcs = [self.src(i) for i in node.inputs]
        dst = self.out_ptr[node.id] if node.op is Op.OUTPUT else self.dest(node)
        p, n, t, ln, tag = node.params, self.count(node.id), self.t, lanes(node), src_tag(node)
        self.body.append(f"    /* {node.id}: {describe(node)}{tag} */")
        if isinstance(p, GainParams):  # a real gain scales re and im alike
            self.body.append(
                f"    for (k = 0; k < {self.scalars(node.id)}; k++) {dst}[k] = {sample_lit(p.gain, self.dtype)} * "
                f"{srcs[0]}[k];"
            )
        elif isinstance(p, DecimateParams) and node.out.variable:
            self.decimate_phased(node, p, srcs[0], dst)
        elif isinstance(p, DecimateParams) and ln == 1:
            self.body.append(f"    for (k = 0; k < {n}; k++) {dst}[k] = {srcs[0]}[k * {p.factor}];")
        elif isinstance(p, DecimateParams):
            self.body.append(f"    for (k = 0; k < {n}; k++) {{ /* keep (re, im) pairs{tag} */")
            self.body.append(f"        {dst}[2 * k] = {srcs[0]}[2 * k * {p.factor}];")
            self.body.append(f"        {dst}[2 * k + 1] = {srcs[0]}[2 * k * {p.factor} + 1];")
            self.body.append("    }")
        elif isinstance(p, MapParams):
            code = MapCode(srcs, [lanes(self.g.node(i)) == 2 for i in node.inputs])
            result = code.value(p.expr)
            if len(result) == 1 and ln == 2:  # a real expression stored in a complex stream cannot happen
                raise AssertionError("map type mismatch")
            self.helpers.update(code.helpers)
            stores = [f"{dst}[k] = ({t})({result[0]});"] if ln == 1 else [
                f"{dst}[2 * k] = ({t})({result[0]});", f"{dst}[2 * k + 1] = ({t})({result[1]});"]  # fmt: skip
            self.body.append(f"    for (k = 0; k < {n}; k++) {{ /* one sample of the expression{tag} */")
            self.body += [f"        {line}" for line in [*code.lines, *stores]]
            self.body.append("    }")
        else:  # output port reading the input or a shared buffer
            self.body.append(f"    memcpy({self.out_ptr[node.id]}, {srcs[0]}, sizeof({t}) * {self.scalars(node.id)});")

    def decimate_phased(self, node: Node, p: DecimateParams, src: str, dst: str) -> None:
        """``x[::M]`` on frames the factor does not divide: the phase ``P`` (index in this frame of the next kept
        sample) is state; the frame keeps ``ceil((n_in - P) / M)`` samples and ``P`` becomes ``P + n * M - n_in``."""
        nid, m, ln, tag = node.id, p.factor, lanes(node), src_tag(node)
        n_in, n = self.count(node.inputs[0]), self.count(node.id)
        self.state.append(f"    size_t {nid}_phase; /* index in the next frame of its first kept sample */")
        self.body += [
            f"    const size_t p_{nid} = s->{nid}_phase; /* samples per frame vary: phase carried{tag} */",
            f"    const size_t {n} = {n_in} > p_{nid} ? ({n_in} - p_{nid} + {m - 1}) / {m} : 0;",
        ]
        if ln == 1:
            self.body.append(f"    for (k = 0; k < {n}; k++) {dst}[k] = {src}[p_{nid} + k * {m}];")
        else:
            self.body += [
                f"    for (k = 0; k < {n}; k++) {{ /* keep (re, im) pairs{tag} */",
                f"        {dst}[2 * k] = {src}[2 * (p_{nid} + k * {m})];",
                f"        {dst}[2 * k + 1] = {src}[2 * (p_{nid} + k * {m}) + 1];",
                "    }",
            ]
        self.body.append(f"    s->{nid}_phase = p_{nid} + {n} * {m} - {n_in};")

    def emit(self) -> None:
        for node in self.g.nodes:
            self.emit_node(node)

    def emit_node(self, node: Node) -> None:
        """Emit one node (subclasses add node kinds by overriding this and deferring to it)."""
        if isinstance(node.params, FirParams):
            self.fir(node, node.params)
        elif isinstance(node.params, IirParams):
            self.iir(node, node.params)
        elif isinstance(node.params, DelayParams):
            self.delay(node, node.params)
        elif node.op in (Op.GAIN, Op.DECIMATE, Op.MAP) or (
            node.op is Op.OUTPUT and self.src(node.inputs[0]) != self.out_ptr[node.id]
        ):
            self.simple(node)
