"""Blocks: one module per IR operation with its type/rate rule and its NumPy golden model.

Invariants shared by every block module:
    * ``infer(params, inputs)`` is the block's type and rate rule. It returns the output ``StreamType`` or raises
      ``RuleError`` with a message that names the violated rule. ``ir.verify`` calls it for every node.
    * ``reference(params, x)`` is the float64 golden model for a WHOLE signal (not frame by frame).
    * ``Streamer`` processes frame after frame, carrying state, and must equal ``reference`` on the
      concatenation; tests check that for every block.
"""

from __future__ import annotations


class RuleError(ValueError):
    """A block's type or rate rule is violated (the IR is ill-formed)."""
