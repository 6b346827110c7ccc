"""Host-C code of the polyphase resampler (``blocks.upfirdn``: ``scipy.signal.upfirdn(h, x, up, down)`` streamed).

Invariants:
    * Only needed products are computed: no zero-stuffed signal exists. Output ``k`` of a frame sits at upsampled
      index ``m = k * down`` (every frame starts at phase 0: the IR requires ``samples * up % down == 0``), uses
      polyphase branch ``p = m % up`` (taps ``h[p], h[p + up], ...``, ``c_p = ceil((L - p) / up)`` of them) and
      the inputs ``m / up - r`` for ``r < c_p``. Each branch is stored reversed in ``NODE_h`` (offset
      ``NODE_first[p]``, length ``NODE_count[p]``) so its inner loop reads the inputs forwards and contiguously.
    * State: ``NODE_buf`` holds ``Q = ceil(L / up)`` past input samples followed by the current frame; after the
      frame its last ``Q`` samples move to the front (``memmove``: ``Q`` may exceed the frame). ``reset`` zeroes
      it, i.e. ``x[n] = 0`` for ``n < 0``. A complex stream is interleaved (re, im) and filtered as two real ones.
    * Sums run in ``T`` (the graph's scalar type), like the FIR kernel; each branch sums its taps in reverse order.
    * Every comment of the block carries ``[src:N]`` (``src_tag``).
"""

from __future__ import annotations

from sigforge.dsp.backends._c_blocks import Emitter, lanes, sample_lit, src_tag, table
from sigforge.dsp.blocks.upfirdn import UpfirdnParams, branches, history
from sigforge.dsp.ir import Node, describe


def emit(em: Emitter, node: Node, p: UpfirdnParams) -> None:
    """Add the tables, state and ``process`` code of one upfirdn node to ``em``."""
    t, nid, tag, ln = em.t, node.id, src_tag(node), lanes(node)
    n_in, n_out, q = em.g.node(node.inputs[0]).out.samples, node.out.samples, history(p)
    src, dst = em.src(node.inputs[0]), em.dest(node)
    parts = branches(p)
    flat = [v for part in parts for v in reversed(part)]
    firsts = [sum(len(b) for b in parts[:i]) for i in range(p.up)]
    em.tables.append(table(t, f"{nid}_h", [sample_lit(v, em.dtype) for v in flat]))
    em.tables.append(table("int", f"{nid}_first", [str(v) for v in firsts], width=16))
    em.tables.append(table("int", f"{nid}_count", [str(len(b)) for b in parts], width=16))
    em.state.append(f"    {t} {nid}_buf[{ln * (q + n_in)}]; /* {q} past input samples + one frame */")
    acc = ["acc0"] if ln == 1 else ["acc0", "acc1"]
    b = em.body
    b += [
        f"    /* {nid}: {describe(node)}{', complex (re, im interleaved)' if ln == 2 else ''}{tag} */",
        f"    memcpy(&s->{nid}_buf[{ln * q}], {src}, sizeof({t}) * {ln * n_in});",
        f"    for (k = 0; k < {n_out}; k++) {{ /* output k: upsampled index k * {p.down}, branch (k * {p.down}) % "
        f"{p.up}, only its taps{tag} */",
        f"        const size_t ph = (k * {p.down}) % {p.up}, c = (size_t){nid}_count[ph];",
        f"        const {t} *hp = &{nid}_h[{nid}_first[ph]];",
        f"        const {t} *xp = &s->{nid}_buf[{ln} * ({q} + 1 + (k * {p.down}) / {p.up} - c)];",
        f"        {t} {', '.join(f'{a} = 0' for a in acc)};",
        f"        for (i = 0; i < c; i++) {{ /* taps of the branch, reversed, over past inputs in order{tag} */",
    ]
    if ln == 1:
        b.append("            acc0 += hp[i] * xp[i];")
    else:
        b += ["            acc0 += hp[i] * xp[2 * i];", "            acc1 += hp[i] * xp[2 * i + 1];"]
    b.append("        }")
    if ln == 1:
        b.append(f"        {dst}[k] = acc0;")
    else:
        b += [f"        {dst}[2 * k] = acc0;", f"        {dst}[2 * k + 1] = acc1;"]
    b += [
        "    }",
        f"    memmove(s->{nid}_buf, &s->{nid}_buf[{ln * n_in}], sizeof({t}) * {ln * q});",
    ]
