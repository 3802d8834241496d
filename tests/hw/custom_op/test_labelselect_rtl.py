"""LabelSelect_rtl (hw/rtl/label_select.sv) against FINN's python LabelSelect (ONNX TopK in
onnxruntime: largest first, the lower label first among equal values)."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from tests.hw.custom_op.stream_layer_util import (
    as_rtl,
    assert_equal_ints,
    finn,  # noqa: F401  (fixture)
    finn_reference,
    needs_verilator,
    one_node_model,
    random_values,
    simulate,
    specialized_node,
    steady_cycles_per_image,
)

pytestmark = needs_verilator


def select_model(idt, labels, pe, k, vectors, odt=None):
    attrs = dict(Labels=labels, PE=pe, K=k, inputDataType=idt.name, numInputVectors=[vectors])
    if odt is not None:
        attrs["outputDataType"] = odt.name
    model = one_node_model("LabelSelect", [("x", (vectors, labels), idt)],
                           [("y", (vectors, k), DataType["UINT8"])], **attrs)
    from qonnx.custom_op.registry import getCustomOp

    # FINN picks the label type itself when none is given (at least 8 bits, whole bytes)
    model.set_tensor_datatype("y", getCustomOp(model.graph.node[0]).get_output_datatype())
    return model


def check_select(dt_name, labels, pe, k, vectors=1000, seed=0):
    idt = DataType[dt_name]
    model = select_model(idt, labels, pe, k, vectors)
    rng = np.random.default_rng(seed)
    x = random_values(rng, idt, (vectors, labels))
    # ties are where top-K implementations differ: half of the vectors draw from only a few
    # values, so most of them hold equal values, at the extremes of the range too
    few = np.array([idt.min(), idt.min() + 1, idt.max() - 1, idt.max()], dtype=np.float32)
    x[::2] = rng.choice(np.unique(few), size=(vectors // 2 + vectors % 2, labels))
    x[1] = idt.max()  # all labels equal
    (want,) = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "LabelSelect_rtl")

    (got,), _ = simulate(op, [x], gaps=True, seed=seed)
    assert_equal_ints(got, want, f"top-{k} of {labels} {dt_name}, PE {pe}")

    (got,), res = simulate(op, [x], gaps=False)
    assert_equal_ints(got, want, "no gaps")
    folds = labels // pe
    ii = steady_cycles_per_image(res, "out0_V", k)
    # one input beat per cycle; the K labels of a vector leave while the next one comes in,
    # so only a vector with fewer beats than labels out (K > Labels/PE) waits for them
    assert ii == max(folds, k)
    exp = op.get_exp_cycles()  # Labels/PE, for one vector whatever numInputVectors says
    if k <= folds:
        assert abs(ii - exp) <= 0.1 * exp, (ii, exp)
    # else: FINN's estimate ignores that its K output beats take K cycles too


# default suite: the default model's head (top-1 of 10 INT14 scores, PE 1) and a folded
# top-3 of unsigned values
@pytest.mark.parametrize("dt,labels,pe,k", [
    ("INT14", 10, 1, 1),
    ("UINT4", 12, 2, 3),
])
def test_select_matches_finn(finn, dt, labels, pe, k):
    check_select(dt, labels, pe, k)


@pytest.mark.slow
@pytest.mark.parametrize("dt", ["UINT1", "INT2", "UINT8", "INT14", "INT20"])
@pytest.mark.parametrize("labels,pe", [(10, 1), (10, 10), (12, 4)])
@pytest.mark.parametrize("k", [1, 2, 5])
def test_select_grid(finn, dt, labels, pe, k):
    check_select(dt, labels, pe, k, seed=labels + pe + k)


@pytest.mark.slow
def test_select_many_labels(finn):
    # 300 labels: 9-bit labels, FINN's output type becomes UINT16
    check_select("INT8", 300, 3, 4, vectors=200)


def test_select_unsupported_reason(finn):
    from hw.custom_op.labelselect_rtl import LabelSelect_rtl as Op

    model = select_model(DataType["INT14"], 10, 1, 1, 1)
    assert Op.unsupported_reason(model, model.graph.node[0]) is None
    model, node = specialized_node(select_model(DataType["INT14"], 10, 1, 1, 1))
    assert Op.unsupported_reason(model, node) is None
    model, node = specialized_node(select_model(DataType["INT14"], 10, 1, 11, 1))
    assert "K=11 is outside 1..Labels=10" in Op.unsupported_reason(model, node)
    model = select_model(DataType["INT14"], 300, 1, 1, 1, odt=DataType["UINT8"])
    assert "UINT8 cannot hold labels 0..299" in Op.unsupported_reason(model, model.graph.node[0])
