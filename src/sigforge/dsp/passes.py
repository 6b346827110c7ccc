"""Optimisation passes over the IR. Each pass is a pure ``Graph -> Graph`` function that keeps semantics.

Invariants:
    * A pass never changes the graph's ports (input and output nodes, their names and types).
    * ``run_passes`` calls ``ir.verify`` after every pass, so a buggy pass is caught at the pass that broke it.
    * Node order stays topological: rewrites only replace a node in place or drop nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sigforge.dsp.blocks import elementwise
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.elementwise import Expr, MapParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.ir import Graph, Node, Op, verify


def _rewire(nodes: list[Node], old: str, new: str) -> list[Node]:
    """Make every reader of ``old`` read ``new`` instead."""
    return [replace(n, inputs=tuple(new if i == old else i for i in n.inputs)) for n in nodes]


def _sole_consumer(nodes: list[Node], node_id: str) -> Node | None:
    readers = [n for n in nodes if node_id in n.inputs]
    return readers[0] if len(readers) == 1 and readers[0].inputs.count(node_id) == 1 else None


def _by_id(nodes: list[Node], node_id: str) -> Node:
    return next(n for n in nodes if n.id == node_id)


def _scale_fir(node: Node, factor: float) -> Node:
    assert isinstance(node.params, FirParams)
    taps = tuple(t * factor for t in node.params.taps)
    return replace(node, params=replace(node.params, taps=taps))


def _fold_one_gain(nodes: list[Node], g: Node) -> list[Node] | None:
    """One rewrite that removes gain node ``g``, or None when it cannot be folded."""
    assert isinstance(g.params, GainParams)
    k = g.params.gain
    (src_id,) = g.inputs
    src = _by_id(nodes, src_id)
    if k == 1.0:
        return [n for n in _rewire(nodes, g.id, src_id) if n.id != g.id]
    # Gain after gain: multiply into the upstream one when we are its only reader.
    if src.op is Op.GAIN and _sole_consumer(nodes, src.id) is g:
        assert isinstance(src.params, GainParams)
        merged = replace(src, params=GainParams(src.params.gain * k))
        nodes = [merged if n.id == src.id else n for n in nodes]
        return [n for n in _rewire(nodes, g.id, src.id) if n.id != g.id]
    # Gain after FIR (possibly through decimators, which commute with a gain): scale the taps.
    cur = src
    while cur.op is Op.DECIMATE and _sole_consumer(nodes, cur.id) is not None:
        cur = _by_id(nodes, cur.inputs[0])
    chain_ok = all(_sole_consumer(nodes, n.id) is not None for n in (cur, src))
    if cur.op is Op.FIR and chain_ok:
        scaled = _scale_fir(cur, k)
        nodes = [scaled if n.id == cur.id else n for n in nodes]
        return [n for n in _rewire(nodes, g.id, src_id) if n.id != g.id]
    # Gain before an FIR that is its only reader: scale that FIR instead.
    reader = _sole_consumer(nodes, g.id)
    if reader is not None and reader.op is Op.FIR:
        scaled = _scale_fir(reader, k)
        nodes = [scaled if n.id == reader.id else n for n in nodes]
        return [n for n in _rewire(nodes, g.id, src_id) if n.id != g.id]
    return None


def fold_gains(graph: Graph) -> Graph:
    """Fold constant gains into neighbouring FIR taps, merge gain chains and drop unit gains."""
    nodes = list(graph.nodes)
    changed = True
    while changed:
        changed = False
        for g in nodes:
            if g.op is Op.GAIN:
                rewritten = _fold_one_gain(nodes, g)
                if rewritten is not None:
                    nodes, changed = rewritten, True
                    break
    return replace(graph, nodes=tuple(nodes))


def fuse_decimation(graph: Graph) -> Graph:
    """Fuse FIR -> decimate into one polyphase FIR computing only kept outputs; merge decimator chains.

    The fused node takes the decimator's id (so its readers need no rewiring) and the FIR's source location.
    """
    nodes = list(graph.nodes)
    changed = True
    while changed:
        changed = False
        for d in nodes:
            if d.op is not Op.DECIMATE:
                continue
            assert isinstance(d.params, DecimateParams)
            src = _by_id(nodes, d.inputs[0])
            if src.op not in (Op.FIR, Op.DECIMATE) or _sole_consumer(nodes, src.id) is not d:
                continue
            if isinstance(src.params, FirParams):
                params: FirParams | DecimateParams = replace(
                    src.params, decimation=src.params.decimation * d.params.factor
                )
                fused = Node(d.id, Op.FIR, params, src.inputs, d.out, src.loc)
            else:
                assert isinstance(src.params, DecimateParams)
                params = DecimateParams(src.params.factor * d.params.factor)
                fused = Node(d.id, Op.DECIMATE, params, src.inputs, d.out, src.loc)
            nodes = [fused if n.id == d.id else n for n in nodes if n.id != src.id]
            changed = True
            break
    return replace(graph, nodes=tuple(nodes))


def eliminate_dead_code(graph: Graph) -> Graph:
    """Drop nodes whose values reach no output (input ports are always kept: they are the interface)."""
    live: set[str] = set()
    for node in reversed(graph.nodes):
        if node.op in (Op.OUTPUT, Op.INPUT) or node.id in live:
            live.add(node.id)
            live.update(node.inputs)
    return replace(graph, nodes=tuple(n for n in graph.nodes if n.id in live))


def _as_map(node: Node) -> MapParams | None:
    """The elementwise expression of a map or gain node (a gain is ``in0 * g``), else None."""
    if isinstance(node.params, MapParams):
        return node.params
    if isinstance(node.params, GainParams):
        return MapParams(("mul", ("in", 0), ("const", float(node.params.gain))))
    return None


def _substitute(expr: Expr, index: int, inner: Expr, shift: dict[int, int]) -> Expr:
    """``expr`` with input ``index`` replaced by ``inner`` and the other inputs renumbered by ``shift``."""
    if expr[0] == "in":
        return inner if expr[1] == index else ("in", shift[expr[1]])
    if expr[0] == "const":
        return expr
    return (expr[0], *(_substitute(a, index, inner, shift) for a in expr[1:]))


def _fuse_pair(outer: Node, outer_p: MapParams, inner: Node, inner_p: MapParams) -> Node | None:
    """One map computing ``outer(..., inner(...), ...)``; its inputs are the union of both, in first-use order."""
    index = outer.inputs.index(inner.id)
    inputs: list[str] = []
    for src in [*outer.inputs[:index], *inner.inputs, *outer.inputs[index + 1 :]]:
        if src not in inputs:
            inputs.append(src)
    shift = {i: inputs.index(src) for i, src in enumerate(outer.inputs) if i != index}
    inner_expr = _substitute(inner_p.expr, -1, ("in", -1), {i: inputs.index(s) for i, s in enumerate(inner.inputs)})
    expr = _substitute(outer_p.expr, index, inner_expr, shift)
    if len(elementwise.walk(expr)) > elementwise.MAX_EXPR_NODES:
        return None
    return Node(outer.id, Op.MAP, MapParams(expr), tuple(inputs), outer.out, outer.loc)


def fuse_elementwise(graph: Graph) -> Graph:
    """Compose chains of elementwise nodes (maps, and gains next to maps) into one map per chain.

    An inner node is absorbed only when the outer node is its sole reader (otherwise its value is still needed).
    The fused node keeps the outer node's id and position, which is after every input of both: order stays
    topological. Two gains are left to ``fold_gains``, which can push them into FIR taps instead.
    """
    nodes = list(graph.nodes)
    changed = True
    while changed:
        changed = False
        for outer in nodes:
            outer_p = _as_map(outer)
            if outer_p is None:
                continue
            for src in dict.fromkeys(outer.inputs):
                inner = _by_id(nodes, src)
                inner_p = _as_map(inner)
                if inner_p is None or _sole_consumer(nodes, inner.id) is not outer:
                    continue
                if outer.op is Op.GAIN and inner.op is Op.GAIN:
                    continue
                fused = _fuse_pair(outer, outer_p, inner, inner_p)
                if fused is not None:
                    nodes = [fused if n.id == outer.id else n for n in nodes if n.id != inner.id]
                    changed = True
                    break
            if changed:
                break
    return replace(graph, nodes=tuple(nodes))


@dataclass(frozen=True, slots=True)
class PassRecord:
    """What one pass did (for the report and the console)."""

    name: str
    nodes_before: int
    nodes_after: int


DEFAULT_PASSES: tuple[tuple[str, Callable[[Graph], Graph]], ...] = (
    ("eliminate_dead_code", eliminate_dead_code),
    ("fold_gains", fold_gains),
    ("fuse_decimation", fuse_decimation),
    ("fuse_elementwise", fuse_elementwise),
    ("eliminate_dead_code", eliminate_dead_code),
)


def run_passes(
    graph: Graph, passes: tuple[tuple[str, Callable[[Graph], Graph]], ...] = DEFAULT_PASSES
) -> tuple[Graph, list[PassRecord]]:
    """Run ``passes`` in order, verifying the graph before the first and after each one.

    Returns:
        The optimised graph and one record per pass.
    """
    verify(graph)
    log: list[PassRecord] = []
    for name, fn in passes:
        after = fn(graph)
        verify(after)
        log.append(PassRecord(name, len(graph.nodes), len(after.nodes)))
        graph = after
    return graph, log
