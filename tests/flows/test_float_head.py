"""The float head (flows.float_head): the ops in front of a model's first quantizer, cut off
for the host, against qonnx's execution of the uncut graph."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from flows.float_head import describe_input, float_head_of, head_input_range, head_integers, needs_head, split_head
from flows.graph import LoweringError

SHAPE = [1, 2, 4, 4]


def front_model(ops, quant: str = "Quant", bits: int = 8, signed: int = 1, narrow: int = 0, scale: float = 2 ** -7,
                zero_point: float = 0.0):
    """input (float) -> ops (each (op_type, scalar constant)) -> quantizer -> Relu -> output."""
    nodes, inits, t = [], [], "x"
    for i, (op, c) in enumerate(ops):
        inits.append(helper.make_tensor(f"c{i}", TensorProto.FLOAT, [], [c]))
        nodes.append(helper.make_node(op, [t, f"c{i}"], [f"t{i}"], name=f"{op}_{i}"))
        t = f"t{i}"
    inits.append(helper.make_tensor("s", TensorProto.FLOAT, [], [scale]))
    if quant == "Quant":
        inits += [helper.make_tensor("zp", TensorProto.FLOAT, [], [zero_point]),
                  helper.make_tensor("bw", TensorProto.FLOAT, [], [float(bits)])]
        nodes.append(helper.make_node("Quant", [t, "s", "zp", "bw"], ["q"], name="Quant_0", domain="qonnx.custom_op.general",
                                      signed=signed, narrow=narrow, rounding_mode="ROUND"))
    else:
        nodes.append(helper.make_node("BipolarQuant", [t, "s"], ["q"], name="BipolarQuant_0",
                                      domain="qonnx.custom_op.general"))
    nodes.append(helper.make_node("Relu", ["q"], ["y"], name="Relu_0"))
    graph = helper.make_graph(nodes, "front", [helper.make_tensor_value_info("x", TensorProto.FLOAT, SHAPE)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, SHAPE)], inits)
    from qonnx.transformation.infer_shapes import InferShapes

    return ModelWrapper(qonnx_make_model(graph, producer_name="test_float_head")).transform(InferShapes())


def run(model, name, x):
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {model.graph.input[0].name: x}, return_full_exec_context=True)[name]


CNV_FRONT = [("Mul", 2.0), ("Sub", 1.0)]  # FINN's CNV: 2x - 1, then a signed 8-bit quantizer


@pytest.mark.parametrize("ops,kw,dtype", [
    (CNV_FRONT, dict(bits=8, signed=1, scale=2 ** -7), "INT8"),
    ([("Div", 255.0), ("Add", 0.25)], dict(bits=4, signed=0, scale=0.1), "UINT4"),
    ([], dict(bits=8, signed=1, scale=0.05), "INT8"),  # a signed quantizer right at the input
    (CNV_FRONT, dict(bits=2, signed=1, narrow=1, scale=1.0), "INT2"),  # FINN's FC nets' 2-bit input
    (CNV_FRONT, dict(quant="BipolarQuant", scale=0.5), "BIPOLAR"),  # FINN's FC nets' 1-bit input
])
def test_head_gives_the_quantizers_integers_and_the_model_its_output(ops, kw, dtype):
    model = front_model(ops, **kw)
    scale = kw["scale"]
    x = np.random.default_rng(0).uniform(-0.2, 1.2, size=(64, *SHAPE[1:])).astype(np.float32)
    q_ref = np.concatenate([run(model, "q", x[i:i + 1]) for i in range(len(x))])
    y_ref = np.concatenate([run(model, "y", x[i:i + 1]) for i in range(len(x))])
    plan = needs_head(model)
    assert plan is not None and [n.op_type for n in plan.nodes][-1] == kw.get("quant", "Quant")
    body = split_head(model, plan)
    head = float_head_of(body)
    p = head_integers(head, x)
    # the host's integers are the quantizer's output / scale, exactly (independent: qonnx on the uncut graph)
    assert np.array_equal(p, np.rint(q_ref / np.float32(scale)).astype(np.int64))
    assert np.abs(q_ref / np.float32(scale) - p).max() < 1e-3  # and q_ref is p * scale up to float rounding
    assert body.get_tensor_datatype("x") == DataType[dtype]
    assert int(p.min()) >= DataType[dtype].min() and int(p.max()) <= DataType[dtype].max()
    # the model that is left takes the integers and computes what the whole model computed
    y = np.concatenate([run(body, "y", p[i:i + 1].astype(np.float32)) for i in range(len(x))])
    assert np.array_equal(y, y_ref)
    assert [n.op_type for n in body.graph.node] == ["Mul", "Relu"]


def test_no_head_where_the_input_quantizer_alone_makes_the_integers():
    """An unsigned zero-point-0 quantizer right at the input: IntegerInput makes it a scale."""
    assert needs_head(front_model([], bits=8, signed=0, scale=1 / 255)) is None
    declared = front_model(CNV_FRONT)
    declared.set_tensor_datatype("x", DataType["UINT8"])  # FINN's recipe: the thresholds take them
    assert needs_head(declared) is None


def test_input_range_is_where_the_quantizer_is_not_saturated():
    head = float_head_of(split_head(front_model(CNV_FRONT), needs_head(front_model(CNV_FRONT))))
    lo, hi = head_input_range(head)
    assert (lo, hi) == (0.0, (1 + 127 / 128) / 2)  # 2x - 1 in [-1, 127/128]
    narrow = front_model(CNV_FRONT, bits=2, signed=1, narrow=1, scale=1.0)
    assert head_input_range(float_head_of(split_head(narrow, needs_head(narrow)))) == (0.0, 1.0)


def test_a_zero_point_is_refused_in_one_line():
    model = front_model(CNV_FRONT, zero_point=3.0)
    with pytest.raises(LoweringError, match="zero point 0"):
        split_head(model, needs_head(model))


def test_describe_input_says_where_the_front_ops_go():
    model = front_model(CNV_FRONT)
    lowered = split_head(ModelWrapper(model.model, make_deepcopy=True), needs_head(model))
    d = describe_input(model, lowered)
    assert d["where"] == "host" and d["head"] == "head.onnx" and d["accelerator_input"]["datatype"] == "INT8"
    assert "Mul, Sub, Div, Clip, Round" in d["summary"]
    declared = front_model(CNV_FRONT)
    declared.set_tensor_datatype("x", DataType["UINT8"])
    d = describe_input(declared, declared)
    assert d["where"] == "thresholds" and "Mul_0 (Mul), Sub_1 (Sub), Quant_0 (Quant)" in d["summary"]


def test_a_float_tail_holding_a_quantizer_is_refused():
    """A scale left in front of a quantized layer: the host would run that layer; refused by name."""
    from flows.float_tail import find_float_tail

    inits = [helper.make_tensor("k", TensorProto.FLOAT, [], [0.37]),
             helper.make_tensor("thr", TensorProto.FLOAT, [8, 1], [0.5] * 8)]
    inits.append(helper.make_tensor("one", TensorProto.FLOAT, [], [1.0]))
    nodes = [helper.make_node("Add", ["x", "one"], ["a"], name="Add_0"),  # integer + integer: the accelerator's
             helper.make_node("Mul", ["a", "k"], ["m"], name="Mul_0"),
             helper.make_node("MultiThreshold", ["m", "thr"], ["y"], name="MultiThreshold_0",
                              domain="qonnx.custom_op.general", out_dtype="UINT1")]
    shape = [1, 8]
    graph = helper.make_graph(nodes, "tail", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)], inits)
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", DataType["INT4"])
    model.set_tensor_datatype("a", DataType["INT5"])
    with pytest.raises(LoweringError, match=r"^Mul_0 \(Mul\): .*MultiThreshold_0 \(MultiThreshold\)"):
        find_float_tail(model)
