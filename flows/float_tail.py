"""The float tail: what follows the last integer tensor of a streamlined graph, run on the host.

A Brevitas model need not end in a quantizer: a classifier without an output quantizer, a bias,
a per-channel affine (BatchNorm) after the last binary layer, a float average pool. Streamlining
moves every scalar scale it can into the thresholds and the final TopK; what is left after the
last integer tensor is float arithmetic that FINN does not put in hardware (FINN's dataflow
partition leaves such nodes in the parent graph, for the host).

``flows.transformation.float_tail`` cuts the graph there (``split_tail``): the model keeps the integer part, whose output is that
last integer tensor (the accelerator's output stream), and the float nodes become a small model
of their own, kept in the integer model's metadata (``float_tail``; one serialized ONNX model)
so that it travels with the (model, cfg) -> model steps. ``execute_with_tail`` runs both.
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.graph import LoweringError, embed_model, embedded_model

TAIL_PROP = "float_tail"
LAYOUT_OPS = ("Transpose", "Reshape", "Flatten")
# quantizers belong in the accelerator: a tail holding one means the lowering stopped early
TAIL_REFUSED = ("MultiThreshold", "Quant", "BipolarQuant")


def _is_integer(model, name: str) -> bool:
    return model.get_initializer(name) is not None or model.get_tensor_datatype(name).is_integer()


def find_float_tail(model) -> tuple[list, str | None]:
    """The float nodes (a non-integer input, or downstream of one) in graph order, and the one
    integer tensor they take from the rest of the graph (None without a tail)."""
    tail, tail_out = [], set()
    for node in model.graph.node:
        ins = [i for i in node.input if i and model.get_initializer(i) is None]
        float_out = node.op_type != "TopK" and not _is_integer(model, node.output[0])  # TopK: the label
        if any(i in tail_out or not _is_integer(model, i) for i in ins) or float_out:
            tail.append(node)
            tail_out.update(node.output)
    if not tail:
        return [], None
    # layout-only nodes right before the tail (the NHWC -> NCHW Transpose FINN leaves in front of
    # a float pool) have no hardware meaning: the host does them
    while True:
        ins = {i for n in tail for i in n.input if i and model.get_initializer(i) is None and i not in tail_out}
        prod = model.find_producer(next(iter(ins))) if len(ins) == 1 else None
        if prod is None or prod.op_type not in LAYOUT_OPS or len(model.find_consumers(prod.output[0])) != 1:
            break
        tail.insert(0, prod)
        tail_out.update(prod.output)
    boundary = []
    for node in tail:
        for i in node.input:
            if i and model.get_initializer(i) is None and i not in tail_out and i not in boundary:
                boundary.append(i)
    if model.graph.input[0].name in boundary:
        raise LoweringError(tail[0], "takes the graph input as floats: nothing of the graph is integer")
    quantizers = [n for n in tail if n.op_type in TAIL_REFUSED]
    if quantizers:  # a scale streamlining could not move: the host would run quantized layers
        raise LoweringError(tail[0], f"a float scale or op that streamlining could not move into thresholds; "
                            f"the host would run the quantized layers after it ({quantizers[0].name} "
                            f"({quantizers[0].op_type}) and {len(tail) - 1} nodes in all)")
    if len(boundary) != 1:
        raise LoweringError(tail[0], f"the float part of the graph takes {len(boundary)} tensors of the integer part "
                            f"({', '.join(boundary)}); the accelerator has one output stream")
    return tail, boundary[0]


def split_tail(model, tail: list, boundary: str):
    """Move the nodes ``tail`` (which take ``boundary`` and constants only from the rest) into
    the model's float tail, in front of any tail it already has; ``boundary`` becomes the output."""
    g = model.graph
    outputs = [o.name for o in g.output]
    used = {i for n in tail for i in n.input}
    inner = {o for n in tail for o in n.output} - set(outputs)
    old = float_tail_of(model)
    nodes, inits = list(tail), [t for t in g.initializer if t.name in used]
    vi = [v for v in g.value_info if v.name in inner]
    out_info = list(g.output)
    if old is not None:  # the earlier tail takes what the new one outputs, under a name of its own
        link = f"{TAIL_PROP}_link{len(old.graph.node)}"
        nodes = [copy.deepcopy(n) for n in tail]
        for n in nodes:
            n.output[:] = [link if o == outputs[0] else o for o in n.output]
        for n in old.graph.node:
            n.input[:] = [link if i == old.graph.input[0].name else i for i in n.input]
        nodes += list(old.graph.node)
        inits += list(old.graph.initializer)
        vi += list(old.graph.value_info) + [helper.make_tensor_value_info(link, 1, model.get_tensor_shape(outputs[0]))]
        out_info = list(old.graph.output)
    b_info = helper.make_tensor_value_info(boundary, 1, model.get_tensor_shape(boundary))
    tail_model = ModelWrapper(qonnx_make_model(
        helper.make_graph(nodes, "float_tail", [b_info], out_info, inits, value_info=vi),
        producer_name="wrn1bit float tail", opset_imports=list(model.model.opset_import)))
    for name in [boundary, *inner]:
        tail_model.set_tensor_datatype(name, model.get_tensor_datatype(name))
    if old is not None:
        for name in [v.name for v in old.graph.value_info] + [old.graph.input[0].name]:
            tail_model.set_tensor_datatype(link if name == old.graph.input[0].name else name,
                                           old.get_tensor_datatype(name))
    shape, dt = model.get_tensor_shape(boundary), model.get_tensor_datatype(boundary)
    for n in tail:
        g.node.remove(n)
    for v in [v for v in g.value_info if v.name == boundary or v.name in inner]:
        g.value_info.remove(v)
    del g.output[:]
    g.output.append(helper.make_tensor_value_info(boundary, 1, shape))
    model.set_tensor_datatype(boundary, dt)
    embed_model(model, TAIL_PROP, tail_model)
    return model


def float_tail_of(model) -> ModelWrapper | None:
    """The float tail kept in ``model``'s metadata, or None."""
    return embedded_model(model, TAIL_PROP)


def run_tail(tail, integers: np.ndarray) -> np.ndarray:
    """The tail's output for the integer part's output values (any shape of the same size)."""
    from qonnx.core.onnx_exec import execute_onnx

    iname = tail.graph.input[0].name
    x = np.asarray(integers, dtype=np.float32).reshape(tail.get_tensor_shape(iname))
    return np.asarray(execute_onnx(tail, {iname: x})[tail.graph.output[0].name])


def label_of_tail_output(tail, out: np.ndarray) -> int:
    """The label in the tail's output: its TopK index, or the arg max of its float output."""
    out = np.asarray(out).reshape(-1)
    last = tail.find_producer(tail.graph.output[0].name)
    return int(out[0]) if last is not None and last.op_type == "TopK" else int(np.argmax(out))


def tail_label(tail, integers: np.ndarray) -> int:
    """The label the host computes from the accelerator's output."""
    return label_of_tail_output(tail, run_tail(tail, integers))


def execute_with_tail(model, feed: dict) -> tuple[dict, np.ndarray]:
    """Execute ``model`` (FINN's executor: custom ops included) and its float tail if it has one:
    the integer part's full context and the final output."""
    from finn.core.onnx_exec import execute_onnx

    ctx = execute_onnx(model, feed, return_full_exec_context=True)
    out = ctx[model.graph.output[0].name]
    tail = float_tail_of(model)
    return ctx, (out if tail is None else run_tail(tail, out))
