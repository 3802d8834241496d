"""The float head: what a model computes in float in front of its first quantizer, run by the host.

The accelerator takes integers. A Brevitas model whose input feeds its input quantizer
directly (``QuantIdentity(act_quant=Uint8ActPerTensorFloat)`` first) gives them without any
float arithmetic: flows.transformation.integer_input.IntegerInput makes that quantizer a scale.
A model whose input is declared integer (FINN's recipe: a ``x / 255`` ToTensor merged in front,
the input typed UINT8) needs nothing either: streamlining folds the float ops in front of the
first quantizer into its thresholds. FINN's own networks as exported take a float image and
compute in float before their first quantizer (CNV: ``2x - 1``, then a signed 8-bit quantizer;
TFC / SFC / LFC: a flatten, ``2x - 1``, a 1- or 2-bit quantizer). That part goes to the host,
the mirror of the float tail after the last integer tensor (flows.float_tail):

  head (host):        x -> [Mul / Div / Add / Sub / Reshape / ...] -> Div(scale) -> Quant(scale 1)
                      = the quantizer's integers p, exactly the integers Quant(x) / scale
  model (accelerator): p (typed INTb / UINTb) -> Mul(scale) -> the quantizer's output as before

Dividing by the scale and quantizing with scale 1 computes the same float operations as qonnx's
quant function (x / scale, round, clip), so the host's integers are the QONNX model's. A
BipolarQuant (1-bit) becomes one of scale 1: +-1, typed BIPOLAR; the lowering then takes it as
its bits (BINARY, -1 -> 0: FINN's xnor-popcount) or as INT2 (flows.transformation.binary), and
the stream carries the one or the other (flows.exactness.stage_input encodes it).

The head travels in the model's metadata (``float_head``, one serialized ONNX model) through
the ``(model, cfg) -> model`` steps; the build writes it to ``head.onnx``.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import numpy as np
from onnx import ModelProto, TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.graph import LoweringError

HEAD_PROP = "float_head"
# float ops of one tensor and constants that may stand in front of the input quantizer
AFFINE_OPS = ("Mul", "Div", "Add", "Sub")
LAYOUT_OPS = ("Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze")
QUANT_OPS = ("Quant", "BipolarQuant")


@dataclass
class HeadPlan:
    """The nodes from the graph input up to and including its first quantizer."""

    nodes: list          # in graph order, the quantizer last
    quant: object        # the Quant / BipolarQuant node


def _attrs(node) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _const_inputs_only(model, node, tensor: str) -> bool:
    return all(i == tensor or not i or model.get_initializer(i) is not None for i in node.input)


def find_head(model) -> HeadPlan | None:
    """The chain graph input -> float / layout ops -> first quantizer, or None where the input
    is declared integer or feeds something else than such a chain."""
    iname = model.graph.input[0].name
    if model.get_tensor_datatype(iname) != DataType["FLOAT32"]:
        return None  # declared integer: streamlining folds the float ops into the first thresholds
    nodes, t = [], iname
    while True:
        consumers = model.find_consumers(t) or []
        if len(consumers) != 1:
            return None
        node = consumers[0]
        if not _const_inputs_only(model, node, t) or node.input[0] != t:
            return None
        nodes.append(node)
        if node.op_type in QUANT_OPS:
            return HeadPlan(nodes, node)
        if node.op_type not in AFFINE_OPS + LAYOUT_OPS:
            return None
        t = node.output[0]


def needs_head(model) -> HeadPlan | None:
    """The head to split off, or None where the input quantizer alone makes the integers
    (one unsigned, zero-point-0 Quant directly at the input: IntegerInput's case)."""
    plan = find_head(model)
    if plan is None:
        return None
    q = plan.quant
    if len(plan.nodes) == 1 and q.op_type == "Quant":
        a = _attrs(q)
        zp = model.get_initializer(q.input[2])
        if not a.get("signed", 1) and not a.get("narrow", 0) and zp is not None and not np.any(zp != 0):
            return None
    return plan


def _quant_datatype(model, q) -> DataType:
    """The integers' type: INTb / UINTb of the quantizer (zero point 0), BIPOLAR for a sign."""
    if q.op_type == "BipolarQuant":
        return DataType["BIPOLAR"]
    zp, bits = model.get_initializer(q.input[2]), model.get_initializer(q.input[3])
    if zp is None or bits is None or np.any(zp != 0) or np.size(bits) != 1:
        raise LoweringError(q, "the input quantizer needs a constant bit width and zero point 0")
    a = _attrs(q)
    b = int(np.asarray(bits).reshape(-1)[0])
    return DataType[f"INT{b}" if a.get("signed", 1) else f"UINT{b}"]


def split_head(model, plan: HeadPlan):
    """Move ``plan`` into the model's float head; the model's input becomes the quantizer's
    integers (same name, the quantizer's output shape), followed by Mul(scale)."""
    g, q = model.graph, plan.quant
    iname = g.input[0].name
    scale = q.input[1]
    if model.get_initializer(scale) is None:
        raise LoweringError(q, "the input quantizer needs a constant scale")
    dt = _quant_datatype(model, q)
    in_shape, out_shape = model.get_tensor_shape(iname), model.get_tensor_shape(q.output[0])
    head_out = "head_integers"
    # the head: the float ops as they are, then Div(scale) and the quantizer with scale 1
    one = helper.make_tensor("head_one", TensorProto.FLOAT, [], [1.0])
    div = helper.make_node("Div", [q.input[0], scale], ["head_unscaled"], name="head_div_scale")
    if q.op_type == "Quant":
        quant = helper.make_node("Quant", ["head_unscaled", "head_one", q.input[2], q.input[3]], [head_out],
                                 name="head_quant", domain=q.domain, **_attrs(q))
    else:
        quant = helper.make_node("BipolarQuant", ["head_unscaled", "head_one"], [head_out], name="head_quant",
                                 domain=q.domain)
    used = {i for n in plan.nodes for i in n.input}
    inits = [t for t in g.initializer if t.name in used] + [one]
    inner = {o for n in plan.nodes[:-1] for o in n.output}
    vi = [v for v in g.value_info if v.name in inner]
    head = ModelWrapper(qonnx_make_model(
        helper.make_graph(list(plan.nodes[:-1]) + [div, quant], "float_head",
                          [helper.make_tensor_value_info(iname, TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(head_out, TensorProto.FLOAT, out_shape)], inits, value_info=vi),
        producer_name="wrn1bit float head", opset_imports=list(model.model.opset_import)))
    head.set_tensor_datatype(head_out, dt)
    # the model: input = the integers, Mul(scale) in place of the chain
    idx = list(g.node).index(plan.nodes[0])
    for n in plan.nodes:
        g.node.remove(n)
    g.node.insert(idx, helper.make_node("Mul", [iname, scale], [q.output[0]], name=q.name + "_input_scale"))
    for v in [v for v in g.value_info if v.name in inner]:
        g.value_info.remove(v)
    model.set_tensor_shape(iname, out_shape)
    model.set_tensor_datatype(iname, dt)
    model.set_metadata_prop(HEAD_PROP, base64.b64encode(head.model.SerializeToString()).decode())
    return model


def float_head_of(model) -> ModelWrapper | None:
    """The float head kept in ``model``'s metadata, or None."""
    data = model.get_metadata_prop(HEAD_PROP)
    if not data:
        return None
    proto = ModelProto()
    proto.ParseFromString(base64.b64decode(data))
    return ModelWrapper(proto)


def head_integers(head, x: np.ndarray) -> np.ndarray:
    """The integers the host computes for float inputs x (N x ...), N at a time."""
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    x = np.asarray(x, dtype=np.float32)
    m = head.transform(ChangeBatchSize(len(x))).transform(InferShapes())
    out = execute_onnx(m, {m.graph.input[0].name: x})[m.graph.output[0].name]
    r = np.rint(out)
    if not np.array_equal(r, out):
        raise AssertionError("the float head's output is not integer-valued")
    return r.astype(np.int64)


def head_input_range(head) -> tuple[float, float] | None:
    """The interval of float inputs the quantizer maps onto its whole integer range, where the
    ops in front of it are scalar affine ones (layout ops aside); None otherwise."""
    a, b = 1.0, 0.0  # the head's float part: x -> a * x + b
    for node in head.graph.node:
        if node.op_type in LAYOUT_OPS:
            continue
        if node.name == "head_div_scale":
            break
        if node.op_type not in AFFINE_OPS:
            return None
        c = head.get_initializer(node.input[1])
        if c is None or np.size(c) != 1 or head.get_initializer(node.input[0]) is not None:  # c - x: not handled
            return None
        c = float(np.asarray(c).reshape(-1)[0])
        a, b = {"Mul": (a * c, b * c), "Div": (a / c, b / c), "Add": (a, b + c), "Sub": (a, b - c)}[node.op_type]
    s = head.get_initializer(next(n for n in head.graph.node if n.name == "head_div_scale").input[1])
    if s is None or np.size(s) != 1 or a == 0:
        return None
    dt = head.get_tensor_datatype(head.graph.output[0].name)
    lo, hi = dt.min(), dt.max()
    q = next(n for n in head.graph.node if n.name == "head_quant")
    if _attrs(q).get("narrow", 0) and dt.signed():
        lo = -hi  # a narrow signed quantizer never reaches the type's minimum
    s = float(np.asarray(s).reshape(-1)[0])
    ends = sorted(((lo * s - b) / a, (hi * s - b) / a))
    return ends[0], ends[1]


def front_ops(model) -> list:
    """The ops between the graph input and its first quantizer (whatever the input's type)."""
    nodes, t = [], model.graph.input[0].name
    while True:
        consumers = model.find_consumers(t) or []
        if len(consumers) != 1 or consumers[0].op_type not in AFFINE_OPS + LAYOUT_OPS + QUANT_OPS:
            return nodes
        nodes.append(consumers[0])
        if consumers[0].op_type in QUANT_OPS:
            return nodes
        t = consumers[0].output[0]


def describe_input(qonnx, lowered) -> dict:
    """What the host does in front of the accelerator and what the accelerator takes, for the
    report: ``qonnx`` is the model as given, ``lowered`` a graph of the flow (after tidy)."""
    iname = lowered.graph.input[0].name
    ops = front_ops(qonnx)
    names = [f"{n.name} ({n.op_type})" for n in ops]
    accel = {"datatype": lowered.get_tensor_datatype(iname).name, "shape": list(lowered.get_tensor_shape(iname))}
    head = float_head_of(lowered)
    if head is not None:
        how = ("the host runs the float head (head.onnx: " + ", ".join(n.op_type for n in head.graph.node)
               + f") in front of the accelerator and passes the input quantizer's {accel['datatype']} integers")
        return {"where": "host", "ops": names, "head": "head.onnx", "accelerator_input": accel, "summary": how}
    qin = qonnx.get_tensor_datatype(qonnx.graph.input[0].name)
    if qin != DataType["FLOAT32"]:
        how = (f"input declared {qin.name}: the accelerator takes it as it is; the float ops in front of the first "
               f"quantizer ({', '.join(names) or 'none'}) are absorbed into the first layer's thresholds")
        return {"where": "thresholds", "ops": names, "head": None, "accelerator_input": accel, "summary": how}
    how = (f"the input quantizer ({', '.join(names)}) becomes a scale: the accelerator takes its "
           f"{accel['datatype']} integers (Quant(x) / scale), folded into the first layer's thresholds")
    return {"where": "scale", "ops": names, "head": None, "accelerator_input": accel, "summary": how}
