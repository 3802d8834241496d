"""The float tail cut off for the host (flows/float_tail.py): at the model's last integer-valued
tensor before streamlining, and what streamlining leaves after the last integer tensor."""

from __future__ import annotations

from qonnx.transformation.base import Transformation

from flows.float_tail import find_float_tail, split_tail
from flows.graph import LoweringError
from flows.reference import output_point


def _ancestors(model, tensor: str) -> set:
    """Names of the nodes ``tensor`` depends on."""
    seen, todo = set(), [tensor]
    while todo:
        node = model.find_producer(todo.pop())
        if node is not None and node.name not in seen:
            seen.add(node.name)
            todo += [i for i in node.input if i]
    return seen


class SplitAtLastIntegerTensor(Transformation):
    """FINN-ONNX level (before streamlining): everything after the model's last integer-valued
    tensor (flows.reference.output_point: the tensor the QONNX reference compares) goes to the
    float tail, so the accelerator outputs exactly that quantity. (Streamlining a per-channel
    affine after the last binary layer would otherwise fold its signs into the weights, and the
    accelerator's integers would no longer be the model's.)"""

    def apply(self, model):
        point = output_point(model)
        if not point.float_tail or point.label_node is not None:
            return model, False
        keep = _ancestors(model, point.tensor.name)
        tail = [n for n in model.graph.node if n.name not in keep]
        made = {o for n in tail for o in n.output}
        for n in tail:
            for i in n.input:
                if i and model.get_initializer(i) is None and i not in made and i != point.tensor.name:
                    raise LoweringError(n, f"the float part after {point.tensor.name} also takes {i}")
        return split_tail(model, tail, point.tensor.name), False


class SplitFloatTail(Transformation):
    """Streamlined level: move the float tail (what is left after the last integer tensor: the
    scale streamlining could not absorb, a layout Transpose) into the model's float tail."""

    def apply(self, model):
        tail, boundary = find_float_tail(model)
        if not tail:
            return model, False
        return split_tail(model, tail, boundary), False
