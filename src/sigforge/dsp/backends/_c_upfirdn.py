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
    * A variable-length stream (``samples * up`` not a multiple of ``down``, or a variable input) emits, like the
      whole-signal rule, ``I * up // down`` outputs after ``I`` inputs, and carries ``W`` in ``NODE_phase``: the
      next output's upsampled index is ``frame start * up - W`` (``0 <= W < down``). The frame emits
      ``n = (n_in * up + W) // down`` outputs, output ``k`` at ``k * down - W`` (offset by ``A * up``, ``A =
      ceil(down / up)``, to stay unsigned), and ``W`` becomes ``n_in * up + W - n * down``. An output may come up
      to ``A`` inputs after its newest one, so the buffer keeps ``Q + A`` past inputs. A fixed stream has
      ``W == 0`` always and keeps the constant-count code.
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
    n_in, q = em.g.node(node.inputs[0]).out.samples, history(p)  # n_in: the most per frame
    src, dst = em.src(node.inputs[0]), em.dest(node)
    parts = branches(p)
    flat = [v for part in parts for v in reversed(part)]
    firsts = [sum(len(b) for b in parts[:i]) for i in range(p.up)]
    em.tables.append(table(t, f"{nid}_h", [sample_lit(v, em.dtype) for v in flat]))
    em.tables.append(table("int", f"{nid}_first", [str(v) for v in firsts], width=16))
    em.tables.append(table("int", f"{nid}_count", [str(len(b)) for b in parts], width=16))
    variable = node.out.variable
    # a variable stream emits output K once (K + 1) * down <= inputs * up (the whole-signal length rule), which may
    # be up to ceil(down / up) inputs after its newest one arrived: keep that many more past inputs
    lag = -(-p.down // p.up) if variable else 0
    hist = q + lag
    em.state.append(f"    {t} {nid}_buf[{ln * (hist + n_in)}]; /* {hist} past input samples + one frame */")
    acc = ["acc0"] if ln == 1 else ["acc0", "acc1"]
    b = em.body
    u = f"(k * {p.down} + {lag * p.up} - w_{nid})" if variable else f"(k * {p.down})"
    b += [
        f"    /* {nid}: {describe(node)}{', complex (re, im interleaved)' if ln == 2 else ''}"
        f"{', samples per frame vary: phase carried across frames' if variable else ''}{tag} */",
        f"    memcpy(&s->{nid}_buf[{ln * hist}], {src}, sizeof({t}) * {em.scalars(node.inputs[0])});",
    ]
    if variable:
        cin, n_out_c = em.count(node.inputs[0]), em.count(node.id)
        em.state.append(f"    size_t {nid}_phase; /* upsampled slots the next output lies before the next frame (< "
                        f"{p.down}) */")  # fmt: skip
        b += [
            f"    const size_t w_{nid} = s->{nid}_phase; /* the next output's upsampled index: frame start * {p.up} "
            f"- w{tag} */",
            f"    const size_t {n_out_c} = ({cin} * {p.up} + w_{nid}) / {p.down};",
        ]
    b += [
        f"    for (k = 0; k < {em.count(node.id)}; k++) {{ /* output k: upsampled index {u}"
        f"{f' - {lag * p.up}' if lag else ''}, branch {u} % {p.up}, only its taps{tag} */",
        f"        const size_t ph = {u} % {p.up}, c = (size_t){nid}_count[ph];",
        f"        const {t} *hp = &{nid}_h[{nid}_first[ph]];",
        f"        const {t} *xp = &s->{nid}_buf[{ln} * ({q} + 1 + {u} / {p.up} - c)];",
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
        f"    memmove(s->{nid}_buf, &s->{nid}_buf[{em.scalars(node.inputs[0])}], sizeof({t}) * {ln * hist});",
    ]
    if variable:
        b.append(f"    s->{nid}_phase = {cin} * {p.up} + w_{nid} - {n_out_c} * {p.down};")
