"""Optimisation passes over the IR. Each pass is a pure ``Graph -> Graph`` function that keeps semantics.

Invariants:
    * A pass never changes the graph's ports (input and output nodes, their names and types).
    * ``run_passes`` calls ``ir.verify`` after every pass, so a buggy pass is caught at the pass that broke it.
    * Node order stays topological: rewrites only replace a node in place or drop nodes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from sigforge.dsp.blocks.decimate import DecimateParams
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
