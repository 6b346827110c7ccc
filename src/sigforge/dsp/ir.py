"""The typed multirate dataflow IR.

A ``Graph`` is an immutable tuple of ``Node``s in topological order: every node's inputs are ids of nodes that
appear earlier, so the graph is acyclic by construction and backends can emit nodes in order. Every node
declares its output ``StreamType`` (dtype, samples per frame, rate relative to the input, whether the samples per
frame vary and the count function that says how many each frame carries) and carries the
``SourceLocation`` it came from, so that errors and generated comments can point at user source.

``verify(graph)`` re-derives every node's type with its block's rule (``sigforge.dsp.blocks.*.infer``) and checks
connectivity. The frontend calls it on what it builds and ``passes.run_passes`` after every pass; a graph that
fails is reported as ``InvalidAlgorithm`` (it is user input once graph specs are accepted). New operations are
added by writing a block module and one entry in ``_RULES``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from sigforge.dsp.blocks import RuleError, decimate, delay, elementwise, fir, frame_ops, gain, iir, ports, upfirdn
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.delay import DelayParams
from sigforge.dsp.blocks.elementwise import MapParams
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.frame_ops import FrameParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.blocks.iir import IirParams
from sigforge.dsp.blocks.ports import PortParams
from sigforge.dsp.blocks.upfirdn import UpfirdnParams
from sigforge.dsp.types import StreamType, cumulative
from sigforge.errors import InvalidAlgorithm, SourceLocation


class Op(StrEnum):
    """IR operations."""

    INPUT = "input"
    FIR = "fir"
    DECIMATE = "decimate"
    DELAY = "delay"
    GAIN = "gain"
    IIR = "iir"
    MAP = "map"
    FRAME = "frame"
    UPFIRDN = "upfirdn"
    OUTPUT = "output"


Params = (
    FirParams
    | DecimateParams
    | DelayParams
    | GainParams
    | IirParams
    | MapParams
    | FrameParams
    | UpfirdnParams
    | PortParams
)

_PARAM_TYPES: dict[Op, type] = {
    Op.INPUT: PortParams,
    Op.OUTPUT: PortParams,
    Op.FIR: FirParams,
    Op.DECIMATE: DecimateParams,
    Op.DELAY: DelayParams,
    Op.GAIN: GainParams,
    Op.IIR: IirParams,
    Op.MAP: MapParams,
    Op.FRAME: FrameParams,
    Op.UPFIRDN: UpfirdnParams,
}


@dataclass(frozen=True, slots=True)
class Node:
    """One IR node.

    Attributes:
        id: unique within the graph (``"n3"``).
        op: the operation.
        params: the operation's parameters (its type is fixed by ``op``).
        inputs: ids of the nodes feeding this one, in argument order.
        out: type of the stream this node produces (for an output node: the exported stream).
        loc: where in the user's source the node comes from, if anywhere.
    """

    id: str
    op: Op
    params: Params
    inputs: tuple[str, ...]
    out: StreamType
    loc: SourceLocation | None = None


@dataclass(frozen=True, slots=True)
class Graph:
    """A whole translation unit: named, nodes in topological order."""

    name: str
    nodes: tuple[Node, ...]

    def node(self, node_id: str) -> Node:
        """The node called ``node_id`` (KeyError if absent)."""
        for n in self.nodes:
            if n.id == node_id:
                return n
        raise KeyError(node_id)

    def consumers(self, node_id: str) -> list[Node]:
        """Nodes that read ``node_id``'s output."""
        return [n for n in self.nodes if node_id in n.inputs]

    @property
    def inputs(self) -> list[Node]:
        """Input nodes, in order."""
        return [n for n in self.nodes if n.op is Op.INPUT]

    @property
    def outputs(self) -> list[Node]:
        """Output nodes, in order."""
        return [n for n in self.nodes if n.op is Op.OUTPUT]


def _infer(node: Node, inputs: Sequence[StreamType]) -> StreamType:
    p = node.params
    if not isinstance(p, _PARAM_TYPES[node.op]):
        raise RuleError(f"{node.op} node has {type(p).__name__} parameters")
    if isinstance(p, PortParams):
        if node.op is Op.INPUT:
            return ports.infer_input(p, inputs, node.out)
        return ports.infer_output(p, inputs)
    rules: dict[type, Callable[..., StreamType]] = {
        FirParams: fir.infer,
        DecimateParams: decimate.infer,
        DelayParams: delay.infer,
        GainParams: gain.infer,
        IirParams: iir.infer,
        MapParams: elementwise.infer,
        FrameParams: frame_ops.infer,
        UpfirdnParams: upfirdn.infer,
    }
    return rules[type(p)](p, inputs)


def _fail(graph: Graph, node: Node | None, message: str) -> InvalidAlgorithm:
    where = f"node {node.id} ({node.op})" if node else "graph"
    return InvalidAlgorithm(
        f"IR check failed for {graph.name!r}, {where}: {message}",
        location=node.loc if node else None,
        detail={"node": node.id if node else None},
    )


def verify(graph: Graph) -> None:
    """Check types, rates and connectivity of ``graph``.

    Raises:
        InvalidAlgorithm: the first violation found, located at the offending node's source.
    """
    seen: dict[str, Node] = {}
    for node in graph.nodes:
        if node.id in seen:
            raise _fail(graph, node, "duplicate node id")
        for src in node.inputs:
            if src not in seen:
                raise _fail(graph, node, f"input {src!r} is not an earlier node (dangling edge or cycle)")
            if seen[src].op is Op.OUTPUT:
                raise _fail(graph, node, f"reads output node {src!r}")
        try:
            derived = _infer(node, [seen[s].out for s in node.inputs])
        except RuleError as exc:
            raise _fail(graph, node, str(exc)) from None
        if derived != node.out:
            raise _fail(graph, node, f"declared type {node.out} but the rule gives {derived}")
        if node.op is Op.INPUT and node.out.rate != Fraction(1):
            raise _fail(graph, node, "input streams run at rate 1")
        seen[node.id] = node
    if not graph.inputs:
        raise _fail(graph, None, "no input node")
    if not graph.outputs:
        raise _fail(graph, None, "no output node")
    names = [n.params.name for n in graph.nodes if isinstance(n.params, PortParams)]
    if len(set(names)) != len(names):
        raise _fail(graph, None, f"port names are not unique: {names}")


def total_decimation(graph: Graph) -> int:
    """The largest decimation from the input to any output (1 / smallest rate)."""
    rates = [n.out.rate for n in graph.outputs]
    return max((r.denominator for r in rates), default=1)


def frame_multiple(graph: Graph) -> int:
    """The smallest input frame length whose multiples make every stream of ``graph`` fixed-length (1 when no
    decimation or resampling is in the graph)."""
    out = 1
    for node in graph.nodes:
        out = math.lcm(out, node.out.frame_multiple)
    return out


def has_frame_ops(graph: Graph) -> bool:
    """Whether some node needs whole frames (``Op.FRAME``): such graphs work only for one frame length pattern."""
    return any(n.op is Op.FRAME for n in graph.nodes)


def frame_starts(stream: StreamType, frame_length: int, frames: int) -> list[int]:
    """Where each frame after the first begins in ``stream`` (sample indices), for ``frames`` input frames of
    ``frame_length`` samples: ``[count after frame 1, count after frame 2, ...]``."""
    return [cumulative(stream.counts, f * frame_length) for f in range(1, frames)]


def describe(node: Node) -> str:  # noqa: PLR0911 - one branch per parameter type
    """A one-line, generated (never user-supplied) description of a node, for comments and summaries."""
    p = node.params
    if isinstance(p, FirParams):
        kept = f", keeps every {p.decimation}th output (polyphase)" if p.decimation > 1 else ""
        return f"FIR, {len(p.taps)} taps{kept}"
    if isinstance(p, DecimateParams):
        return f"decimate by {p.factor}"
    if isinstance(p, DelayParams):
        return f"delay by {p.count} sample(s)"
    if isinstance(p, GainParams):
        return f"gain {p.gain!r}"
    if isinstance(p, IirParams):
        form = "lfilter(b, a)" if p.form == "ba" else "sosfilt"
        return f"IIR ({form}), order {p.order}, {len(p.sections)} biquad section(s)"
    if isinstance(p, MapParams):
        ops = sorted({e[0] for e in elementwise.walk(p.expr) if e[0] not in ("in", "const")})
        return f"elementwise {', '.join(ops) or 'copy'} on {elementwise.arity(p.expr)} input(s)"
    if isinstance(p, UpfirdnParams):
        return f"upfirdn, {len(p.taps)} taps, up {p.up}, down {p.down} (polyphase, only the kept outputs)"
    if isinstance(p, FrameParams):
        what = f"{p.op} by a constant array" if p.kind == "const" else p.kind
        return f"frame operation {what} on each frame of {p.n} samples"
    return f"{node.op} {p.name}"
