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

  head (host):        x -> [Mul / Div / Add / Sub / Reshape / ...] -> Div(scale) -> Clip -> Round
                      = the quantizer's integers p, exactly the integers Quant(x) / scale
  model (accelerator): p (typed INTb / UINTb) -> Mul(scale) -> the quantizer's output as before

The head is standard ONNX only (Div, Clip, Round / Floor / Ceil; a sign as Less and
Where), so onnxruntime runs it on a board's ARM without qonnx; it computes the same float
operations as qonnx's quant function (x / scale, clip to the integer range, round), so the
host's integers are the QONNX model's. A BipolarQuant (1-bit) gives +-1, typed BIPOLAR; the
lowering then takes it as its bits (BINARY, -1 -> 0: FINN's xnor-popcount) or as INT2
(flows.transformation.binary), and the stream carries the one or the other
(flows.exactness.stage_input encodes it).

The head travels in the model's metadata (``float_head``, one serialized ONNX model) through
the ``(model, cfg) -> model`` steps; the build writes it to ``head.onnx``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.graph import LoweringError, embed_model, embedded_model, node_attrs

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


def _const_inputs_only(model, node, tensor: str) -> bool:
    return all(i == tensor or not i or model.get_initializer(i) is not None for i in node.input)


def front_chain(model) -> list:
    """The ops from the graph input up to and including its first quantizer: a chain of
    single-consumer float / layout ops of one tensor and constants; it stops short where the
    chain goes on with anything else (then it holds no quantizer)."""
    nodes, t = [], model.graph.input[0].name
    while True:
        consumers = model.find_consumers(t) or []
        if len(consumers) != 1:
            return nodes
        node = consumers[0]
        if not _const_inputs_only(model, node, t) or node.input[0] != t \
                or node.op_type not in AFFINE_OPS + LAYOUT_OPS + QUANT_OPS:
            return nodes
        nodes.append(node)
        if node.op_type in QUANT_OPS:
            return nodes
        t = node.output[0]


def find_head(model) -> HeadPlan | None:
    """The chain graph input -> float / layout ops -> first quantizer, or None where the input
    is declared integer or feeds something else than such a chain."""
    if model.get_tensor_datatype(model.graph.input[0].name) != DataType["FLOAT32"]:
        return None  # declared integer: streamlining folds the float ops into the first thresholds
    nodes = front_chain(model)
    return HeadPlan(nodes, nodes[-1]) if nodes and nodes[-1].op_type in QUANT_OPS else None


def needs_head(model) -> HeadPlan | None:
    """The head to split off, or None where the input quantizer alone makes the integers
    (one unsigned, zero-point-0 Quant directly at the input: IntegerInput's case)."""
    plan = find_head(model)
    if plan is None:
        return None
    q = plan.quant
    if len(plan.nodes) == 1 and q.op_type == "Quant":
        a = node_attrs(q)
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
    a = node_attrs(q)
    b = int(np.asarray(bits).reshape(-1)[0])
    return DataType[f"INT{b}" if a.get("signed", 1) else f"UINT{b}"]


ROUNDING = {"ROUND": "Round", "HALF_EVEN": "Round", "FLOOR": "Floor", "CEIL": "Ceil"}


def _integer_ops(model, q, out: str, dt: DataType) -> tuple[list, list]:
    """Standard ONNX nodes computing qonnx's Quant(x) / scale (Div, Clip, rounding) or a
    BipolarQuant's sign (Less, Where) from q's input into ``out``; and their constants."""
    x = q.input[0]
    f = lambda name, v: helper.make_tensor(name, TensorProto.FLOAT, [], [float(v)])  # noqa: E731
    if q.op_type == "BipolarQuant":  # qonnx: +1 where x >= 0, else -1 (a positive scale cannot change it)
        nodes = [helper.make_node("Less", [x, "head_zero"], ["head_negative"], name="head_sign_test"),
                 helper.make_node("Where", ["head_negative", "head_minus_one", "head_one"], [out], name="head_sign")]
        return nodes, [f("head_zero", 0), f("head_one", 1), f("head_minus_one", -1)]
    mode = node_attrs(q).get("rounding_mode", "ROUND")
    mode = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    if mode not in ROUNDING:
        raise LoweringError(q, f"rounding mode {mode}: the host's float head rounds with ROUND, FLOOR or CEIL")
    lo, hi = _quant_range(model, q, dt)
    nodes = [helper.make_node("Div", [x, q.input[1]], ["head_unscaled"], name="head_div_scale"),
             helper.make_node("Clip", ["head_unscaled", "head_min", "head_max"], ["head_clipped"], name="head_clip"),
             helper.make_node(ROUNDING[mode], ["head_clipped"], [out], name="head_round")]
    return nodes, [f("head_min", lo), f("head_max", hi)]


def _quant_range(model, q, dt: DataType) -> tuple[int, int]:
    """The quantizer's integer range (narrow: the signed minimum left out)."""
    lo, hi = int(dt.min()), int(dt.max())
    if node_attrs(q).get("narrow", 0):
        return (lo + 1, hi) if dt.signed() else (lo, hi - 1)
    return lo, hi


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
    # the head: the float ops as they are, then the quantizer's integers in standard ONNX
    tail_nodes, consts = _integer_ops(model, q, head_out, dt)
    used = {i for n in plan.nodes[:-1] for i in n.input} | {scale}
    inits = [t for t in g.initializer if t.name in used] + consts
    inner = {o for n in plan.nodes[:-1] for o in n.output}
    vi = [v for v in g.value_info if v.name in inner]
    head = ModelWrapper(qonnx_make_model(
        helper.make_graph(list(plan.nodes[:-1]) + tail_nodes, "float_head",
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
    embed_model(model, HEAD_PROP, head)
    return model


def float_head_of(model) -> ModelWrapper | None:
    """The float head kept in ``model``'s metadata, or None."""
    return embedded_model(model, HEAD_PROP)


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
        if node.name.startswith("head_"):  # the quantizer's own ops
            break
        if node.op_type not in AFFINE_OPS:
            return None
        c = head.get_initializer(node.input[1])
        if c is None or np.size(c) != 1 or head.get_initializer(node.input[0]) is not None:  # c - x: not handled
            return None
        c = float(np.asarray(c).reshape(-1)[0])
        a, b = {"Mul": (a * c, b * c), "Div": (a / c, b / c), "Add": (a, b + c), "Sub": (a, b - c)}[node.op_type]
    div = next((n for n in head.graph.node if n.name == "head_div_scale"), None)
    if div is None:  # a sign: the interval the float ops map onto [-1, 1] around its threshold 0
        s, lo, hi = 1.0, -1.0, 1.0
    else:
        s = head.get_initializer(div.input[1])
        if s is None or np.size(s) != 1:
            return None
        s = float(np.asarray(s).reshape(-1)[0])
        lo, hi = (float(head.get_initializer(f"head_{k}")) for k in ("min", "max"))
    if a == 0:
        return None
    ends = sorted(((lo * s - b) / a, (hi * s - b) / a))
    return ends[0], ends[1]


def describe_input(qonnx, lowered) -> dict:
    """What the host does in front of the accelerator and what the accelerator takes, for the
    report: ``qonnx`` is the model as given, ``lowered`` a graph of the flow (after tidy)."""
    iname = lowered.graph.input[0].name
    ops = front_chain(qonnx)
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
