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


def _order_preserving(model, names: list) -> bool:
    """A tail of scalar ops that keep the order of the class scores (a positive scale, a shift:
    FINN's TensorNorm after CNV / TFC's last layer): no tail, the label is the accelerator's
    (streamlining moves them into a TopK, FINN's LabelSelect)."""
    import numpy as np

    for node in (n for n in model.graph.node if n.name in names):
        c = model.get_initializer(node.input[1]) if len(node.input) == 2 else None
        if c is None or np.size(c) != 1 or model.get_initializer(node.input[0]) is not None:
            return False
        if node.op_type in ("Mul", "Div") and float(np.asarray(c).reshape(-1)[0]) > 0:
            continue
        if node.op_type not in ("Add", "Sub"):
            return False
    return True


class SplitAtLastIntegerTensor(Transformation):
    """FINN-ONNX level (before streamlining): everything after the model's last integer-valued
    tensor (flows.reference.output_point: the tensor the QONNX reference compares) goes to the
    float tail, so the accelerator outputs exactly that quantity. (Streamlining a per-channel
    affine after the last binary layer would otherwise fold its signs into the weights, and the
    accelerator's integers would no longer be the model's.)"""

    def apply(self, model):
        point = output_point(model)
        if not point.float_tail or point.label_node is not None or _order_preserving(model, point.float_tail):
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
