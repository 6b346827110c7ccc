"""Host-C code of frame operations (``blocks.frame_ops``): FFTs, shifts, per-frame reductions, constant arrays.

Invariants:
    * Frame operations keep no state: everything they add to the state struct is scratch that is fully written
      before it is read in the same ``process`` call (the FFT's ``work`` array of ``FFTCode.work_len`` scalars,
      and for the FFT of a real stream its complex copy). ``reset`` zeroing it is harmless.
    * FFTs come from ``fft_c`` (interleaved re, im; NumPy's ``norm="backward"`` scaling; ``irfft`` ignores the
      imaginary parts of bins 0 and ``n/2`` as NumPy does); their tables and functions are prefixed with the
      node id, so two transforms never collide.
    * Reductions and constant-array operations compute in ``double`` and round to ``T`` once, like elementwise
      maps. ``max`` propagates NaN; ``argmax`` is the first index of the maximum, or of the first NaN (NumPy's
      rules), stored as a float of the stream's precision (exact: indices are < 2**24).
    * Every block comment and function carries ``[src:N]`` (``src_tag``).
"""

from __future__ import annotations

from sigforge.dsp.backends import _c_upfirdn, fft_c
from sigforge.dsp.backends._c_blocks import Emitter, lanes, src_tag, table
from sigforge.dsp.backends._c_map import dlit
from sigforge.dsp.blocks.frame_ops import FrameParams
from sigforge.dsp.blocks.upfirdn import UpfirdnParams
from sigforge.dsp.ir import Node, describe
from sigforge.dsp.types import DType

_CONST = {
    "mul": ("{x} * {c}", "{x} * {c}"),
    "div": ("{x} / {c}", "{x} / {c}"),
    "add": ("{x} + {c}", "{x}"),
    "sub": ("{x} - {c}", "{x}"),
    "rsub": ("{c} - {x}", "-{x}"),
}  # fmt: skip  (re, im) of x op c


class FrameEmitter(Emitter):
    """``Emitter`` that also emits ``Op.FRAME`` and ``Op.UPFIRDN`` nodes (same dispatch otherwise, in graph order)."""

    def emit_node(self, node: Node) -> None:
        if isinstance(node.params, FrameParams):
            self.frame(node, node.params)
        elif isinstance(node.params, UpfirdnParams):
            _c_upfirdn.emit(self, node, node.params)
        else:
            super().emit_node(node)

    def frame(self, node: Node, p: FrameParams) -> None:
        src, dst, tag = self.src(node.inputs[0]), self.dest(node), src_tag(node)
        self.body.append(f"    /* {node.id}: {describe(node)}{tag} */")
        if p.kind in ("fft", "ifft", "rfft", "irfft"):
            self._fft(node, p, src, dst, tag)
        elif p.kind in ("fftshift", "ifftshift"):
            ln, t = lanes(node), self.t
            first = p.n // 2 if p.kind == "fftshift" else p.n - p.n // 2  # samples moved from the end to the front
            self.body += [
                f"    memcpy({dst}, &{src}[{ln * (p.n - first)}], sizeof({t}) * {ln * first});",
                f"    memcpy(&{dst}[{ln * first}], {src}, sizeof({t}) * {ln * (p.n - first)});",
            ]
        elif p.kind == "const":
            self._const(node, p, src, dst, tag)
        else:
            self._reduce(node, p, src, dst, tag)

    def _fft(self, node: Node, p: FrameParams, src: str, dst: str, tag: str) -> None:
        nid, t = node.id, self.t
        dtype: fft_c.FloatName = "float64" if self.dtype is DType.FLOAT64 else "float32"
        line = node.loc.line if node.loc else None
        prefix = f"{nid}_fft"
        if p.kind == "rfft":
            code = fft_c.generate_rfft(p.n, dtype=dtype, prefix=prefix, src_line=line)
        elif p.kind == "irfft":
            code = fft_c.generate_irfft(2 * (p.n - 1), dtype=dtype, prefix=prefix, src_line=line)
        else:
            code = fft_c.generate_fft(p.n, dtype=dtype, inverse=p.kind == "ifft", prefix=prefix, src_line=line)
        self.tables.append(f"/* {nid}: {code.kind}, {code.algorithm}{tag} */\n{code.definitions}")
        self.state.append(f"    {t} {nid}_work[{max(code.work_len, 1)}]; /* FFT scratch, written before read */")
        if p.kind in ("fft", "ifft") and lanes(self.g.node(node.inputs[0])) == 1:
            self.state.append(f"    {t} {nid}_cin[{2 * p.n}]; /* the real frame as complex, scratch */")
            self.body.append(f"    for (k = 0; k < {p.n}; k++) {{ /* real -> complex (im = 0){tag} */")
            self.body += [f"        s->{nid}_cin[2 * k] = {src}[k];", f"        s->{nid}_cin[2 * k + 1] = 0;", "    }"]
            src = f"s->{nid}_cin"
        self.body.append(f"    {prefix}({src}, {dst}, s->{nid}_work);")

    def _const(self, node: Node, p: FrameParams, src: str, dst: str, tag: str) -> None:
        nid, t = node.id, self.t
        self.tables.append(
            f"/* {nid}: the constant array{tag} */\n" + table("double", f"{nid}_c", [dlit(v) for v in p.values])
        )
        re, im = _CONST[p.op]
        c = f"{nid}_c[k]"
        self.body.append(f"    for (k = 0; k < {p.n}; k++) {{ /* {p.op} by the constant array, in double{tag} */")
        if lanes(node) == 1:
            self.body.append(f"        {dst}[k] = ({t})({re.format(x=f'(double){src}[k]', c=c)});")
        else:
            self.body += [
                f"        {dst}[2 * k] = ({t})({re.format(x=f'(double){src}[2 * k]', c=c)});",
                f"        {dst}[2 * k + 1] = ({t})({im.format(x=f'(double){src}[2 * k + 1]', c=c)});",
            ]
        self.body.append("    }")

    def _reduce(self, node: Node, p: FrameParams, src: str, dst: str, tag: str) -> None:
        t, n = self.t, p.n
        if p.kind in ("sum", "mean"):
            scale = "" if p.kind == "sum" else f" / {dlit(float(n))}"
            if lanes(node) == 1:
                self.body += [
                    "    {",
                    "        double acc = 0.0;",
                    f"        for (k = 0; k < {n}; k++) acc += (double){src}[k]; /* in order, double{tag} */",
                    f"        {dst}[0] = ({t})(acc{scale});",
                    "    }",
                ]
            else:
                self.body += [
                    "    {",
                    "        double acc = 0.0, acci = 0.0;",
                    f"        for (k = 0; k < {n}; k++) {{ /* re and im in order, double{tag} */",
                    f"            acc += (double){src}[2 * k];",
                    f"            acci += (double){src}[2 * k + 1];",
                    "        }",
                    f"        {dst}[0] = ({t})(acc{scale});",
                    f"        {dst}[1] = ({t})(acci{scale});",
                    "    }",
                ]
            return
        result = "best" if p.kind == "max" else "(double)at"
        self.body += [
            "    {",
            f"        double best = (double){src}[0];",
            "        size_t at = 0;",
            f"        for (k = 1; k < {n} && best == best; k++) {{ /* first maximum; a NaN wins and stops{tag} */",
            f"            const double v = (double){src}[k];",
            "            if (v > best || v != v) {",
            "                best = v;",
            "                at = k;",
            "            }",
            "        }",
            f"        {dst}[0] = ({t})({result});",
            "        (void)at;",
            "    }",
        ]
