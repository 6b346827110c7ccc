"""Golden models of whole graphs, built from the blocks' float64 references.

Values are float64 arrays, complex128 for complex streams. ``evaluate`` interprets a graph on a whole signal;
``StreamingModel`` runs it frame by frame with each block's ``Streamer``. Both read only the IR, so the same
functions check the frontend's graph and every optimised graph.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from sigforge.dsp.blocks import decimate, delay, elementwise, fir, frame_ops, gain, iir, upfirdn
from sigforge.dsp.blocks.decimate import DecimateParams
from sigforge.dsp.blocks.delay import DelayParams
from sigforge.dsp.blocks.elementwise import MapParams, wide
from sigforge.dsp.blocks.fir import FirParams
from sigforge.dsp.blocks.frame_ops import FrameParams
from sigforge.dsp.blocks.gain import GainParams
from sigforge.dsp.blocks.iir import IirParams
from sigforge.dsp.blocks.upfirdn import UpfirdnParams
from sigforge.dsp.ir import Graph, Op

FloatArray = npt.NDArray[np.float64]


class _Streamer(Protocol):
    def reset(self) -> None: ...
    def process(self, *frames: Any) -> FloatArray: ...


def _reference(params: Any) -> Callable[..., FloatArray]:  # noqa: PLR0911 - one branch per block
    if isinstance(params, FirParams):
        return lambda x: fir.reference(params, x)
    if isinstance(params, DecimateParams):
        return lambda x: decimate.reference(params, x)
    if isinstance(params, DelayParams):
        return lambda x: delay.reference(params, x)
    if isinstance(params, GainParams):
        return lambda x: gain.reference(params, x)
    if isinstance(params, IirParams):
        return lambda x: iir.reference(params, x)
    if isinstance(params, MapParams):
        return lambda *xs: elementwise.reference(params, *xs)
    if isinstance(params, FrameParams):
        return lambda x: frame_ops.reference(params, x)
    if isinstance(params, UpfirdnParams):
        return lambda x: upfirdn.reference(params, x)
    raise TypeError(f"no golden model for {type(params).__name__}")


def evaluate(graph: Graph, x: npt.ArrayLike) -> list[FloatArray]:
    """Run ``graph`` on a whole single-input signal in float64.

    Args:
        graph: a verified graph with one input.
        x: the whole input signal.

    Returns:
        One array per output node, in graph order.
    """
    values: dict[str, FloatArray] = {}
    for node in graph.nodes:
        if node.op is Op.INPUT:
            values[node.id] = wide(x)
        elif node.op is Op.OUTPUT:
            values[node.id] = values[node.inputs[0]]
        else:
            values[node.id] = _reference(node.params)(*(values[i] for i in node.inputs))
    return [values[n.id] for n in graph.outputs]


def _streamer(params: Any) -> Any:  # noqa: PLR0911 - one branch per block; a block Streamer
    if isinstance(params, FirParams):
        return fir.Streamer(params)
    if isinstance(params, DecimateParams):
        return decimate.Streamer(params)
    if isinstance(params, DelayParams):
        return delay.Streamer(params)
    if isinstance(params, GainParams):
        return gain.Streamer(params)
    if isinstance(params, IirParams):
        return iir.Streamer(params)
    if isinstance(params, MapParams):
        return elementwise.Streamer(params)
    if isinstance(params, FrameParams):
        return frame_ops.Streamer(params)
    if isinstance(params, UpfirdnParams):
        return upfirdn.Streamer(params)
    raise TypeError(f"no streaming model for {type(params).__name__}")


class StreamingModel:
    """Frame-by-frame golden model of a graph (state carried between ``process`` calls)."""

    def __init__(self, graph: Graph) -> None:
        self._graph = graph
        blocks = [n for n in graph.nodes if n.op not in (Op.INPUT, Op.OUTPUT)]
        self._blocks: dict[str, _Streamer] = {n.id: _streamer(n.params) for n in blocks}

    def reset(self) -> None:
        """Return every block to its initial state."""
        for block in self._blocks.values():
            block.reset()

    def process(self, frame: npt.ArrayLike) -> list[FloatArray]:
        """Process one frame; returns one array per output.

        Streaming blocks take frames of any length; frame operations (``blocks.frame_ops``) need whole frames of
        their own length, so with them in the graph ``frame`` must be a whole number of the graph's frames.
        """
        values: dict[str, FloatArray] = {}
        for node in self._graph.nodes:
            if node.op is Op.INPUT:
                values[node.id] = wide(frame)
            elif node.op is Op.OUTPUT:
                values[node.id] = values[node.inputs[0]]
            else:
                values[node.id] = self._blocks[node.id].process(*(values[i] for i in node.inputs))
        return [values[n.id] for n in self._graph.outputs]
