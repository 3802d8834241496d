"""Checks that stop a lowering with one LoweringError naming the node."""

from __future__ import annotations

from qonnx.transformation.base import Transformation

from flows.graph import LoweringError


class RequireNodes(Transformation):
    """Raise LoweringError on the first node that is not one of the allowed op types."""

    def __init__(self, allowed, message: str):
        super().__init__()
        self.allowed, self.message = set(allowed), message

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type not in self.allowed:
                raise LoweringError(node, self.message)
        return model, False
