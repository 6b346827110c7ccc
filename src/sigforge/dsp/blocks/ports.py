"""Graph ports: the ``input`` and ``output`` nodes.

Rules: an input node has no inputs and declares its (fixed-length) stream type; an output node has exactly one
input whose type it passes through (its own ``out`` stream type is that of the signal it exports).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sigforge.dsp.blocks import RuleError
from sigforge.dsp.types import StreamType


@dataclass(frozen=True, slots=True)
class PortParams:
    """Parameters of an input or output node.

    Attributes:
        name: the port name (the Python parameter name for inputs, ``"y"``/``"y0"`` for outputs).
    """

    name: str


def infer_input(params: PortParams, inputs: Sequence[StreamType], declared: StreamType) -> StreamType:
    """An input node produces what it declares and consumes nothing."""
    if inputs:
        raise RuleError(f"input {params.name!r} must have no inputs")
    if declared.samples < 1:
        raise RuleError(f"input {params.name!r} needs a positive frame length, got {declared.samples}")
    if declared.variable or declared.counts:
        raise RuleError(f"input {params.name!r} must be a fixed-length stream")
    return declared


def infer_output(params: PortParams, inputs: Sequence[StreamType]) -> StreamType:
    """An output node passes its single input's type through."""
    if len(inputs) != 1:
        raise RuleError(f"output {params.name!r} takes exactly one input, got {len(inputs)}")
    return inputs[0]
