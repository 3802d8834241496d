"""The float tail: what follows the last integer tensor of a streamlined graph, run on the host.

A Brevitas model need not end in a quantizer: a classifier without an output quantizer, a bias,
a per-channel affine (BatchNorm) after the last binary layer, a float average pool. Streamlining
moves every scalar scale it can into the thresholds and the final TopK; what is left after the
last integer tensor is float arithmetic that FINN does not put in hardware (FINN's dataflow
partition leaves such nodes in the parent graph, for the host).

``SplitFloatTail`` cuts the graph there: the model keeps the integer part, whose output is that
last integer tensor (the accelerator's output stream), and the float nodes become a small model
of their own, kept in the integer model's metadata (``float_tail``; one serialized ONNX model)
so that it travels with the (model, cfg) -> model steps. ``execute_with_tail`` runs both.
"""

from __future__ import annotations

import base64

import numpy as np
from onnx import ModelProto, helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.util.basic import qonnx_make_model

TAIL_PROP = "float_tail"


def _is_integer(model, name: str) -> bool:
    return model.get_initializer(name) is not None or model.get_tensor_datatype(name).is_integer()


def find_float_tail(model) -> tuple[list, str | None]:
    """The float nodes (a non-integer input, or downstream of one) in graph order, and the one
    integer tensor they take from the rest of the graph (None without a tail)."""
    from flows.streamline import LoweringError

    tail, tail_out = [], set()
    for node in model.graph.node:
        ins = [i for i in node.input if i and model.get_initializer(i) is None]
        if any(i in tail_out or not _is_integer(model, i) for i in ins):
            tail.append(node)
            tail_out.update(node.output)
    if not tail:
        return [], None
    boundary = []
    for node in tail:
        for i in node.input:
            if i and model.get_initializer(i) is None and i not in tail_out and i not in boundary:
                boundary.append(i)
    if model.graph.input[0].name in boundary:
        raise LoweringError(tail[0], "takes the graph input as floats: nothing of the graph is integer")
    if len(boundary) != 1:
        raise LoweringError(tail[0], f"the float part of the graph takes {len(boundary)} tensors of the integer part "
                            f"({', '.join(boundary)}); the accelerator has one output stream")
    return tail, boundary[0]


class SplitFloatTail(Transformation):
    """Streamlined level: move the float tail into its own model (metadata ``float_tail``); the
    graph output becomes the last integer tensor."""

    def apply(self, model):
        tail, boundary = find_float_tail(model)
        if not tail:
            return model, False
        g = model.graph
        used = {i for n in tail for i in n.input}
        inits = [t for t in g.initializer if t.name in used]
        inner = {o for n in tail for o in n.output} - {o.name for o in g.output}
        vi = [v for v in g.value_info if v.name in inner]
        b_info = helper.make_tensor_value_info(boundary, 1, model.get_tensor_shape(boundary))
        tail_graph = helper.make_graph([n for n in tail], "float_tail", [b_info], list(g.output), inits, value_info=vi)
        tail_model = ModelWrapper(qonnx_make_model(tail_graph, producer_name="wrn1bit float tail"))
        for name in [boundary, *inner]:
            tail_model.set_tensor_datatype(name, model.get_tensor_datatype(name))
        for n in tail:
            g.node.remove(n)
        del g.output[:]
        g.output.append(helper.make_tensor_value_info(boundary, 1, model.get_tensor_shape(boundary)))
        model.set_metadata_prop(TAIL_PROP, base64.b64encode(tail_model.model.SerializeToString()).decode())
        return model, False


def float_tail_of(model) -> ModelWrapper | None:
    """The float tail kept in ``model``'s metadata, or None."""
    data = model.get_metadata_prop(TAIL_PROP)
    if not data:
        return None
    proto = ModelProto()
    proto.ParseFromString(base64.b64decode(data))
    return ModelWrapper(proto)


def run_tail(tail, integers: np.ndarray) -> np.ndarray:
    """The tail's output for the integer part's output values (any shape of the same size)."""
    from qonnx.core.onnx_exec import execute_onnx

    iname = tail.graph.input[0].name
    x = np.asarray(integers, dtype=np.float32).reshape(tail.get_tensor_shape(iname))
    return np.asarray(execute_onnx(tail, {iname: x})[tail.graph.output[0].name])


def tail_label(tail, integers: np.ndarray) -> int:
    """The label the host computes from the accelerator's output: the tail's TopK index, or the
    arg max of its float output."""
    out = run_tail(tail, integers).reshape(-1)
    last = tail.find_producer(tail.graph.output[0].name)
    return int(out[0]) if last is not None and last.op_type == "TopK" else int(np.argmax(out))


def execute_with_tail(model, feed: dict) -> tuple[dict, np.ndarray]:
    """Execute ``model`` (FINN's executor: custom ops included) and its float tail if it has one:
    the integer part's full context and the final output."""
    from finn.core.onnx_exec import execute_onnx

    ctx = execute_onnx(model, feed, return_full_exec_context=True)
    out = ctx[model.graph.output[0].name]
    tail = float_tail_of(model)
    return ctx, (out if tail is None else run_tail(tail, out))
