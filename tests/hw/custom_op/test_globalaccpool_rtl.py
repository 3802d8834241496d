"""GlobalAccPool_rtl (hw/rtl/global_acc_pool.sv) against FINN's python GlobalAccPool."""

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


def pool_model(idt, ch, pe, vecs):
    from qonnx.custom_op.registry import getCustomOp

    n, h, w = vecs
    attrs = dict(NumChannels=ch, PE=pe, inputDataType=idt.name, numInputVectors=list(vecs))
    model = one_node_model("GlobalAccPool", [("x", (n, h, w, ch), idt)],
                           [("y", (n, 1, 1, ch), DataType["INT32"])], **attrs)
    # the output type is FINN's own (smallest that holds H*W extreme inputs)
    model.set_tensor_datatype("y", getCustomOp(model.graph.node[0]).get_output_datatype())
    return model


def check_pool(dt_name, ch, pe, vecs, seed=0):
    idt = DataType[dt_name]
    model = pool_model(idt, ch, pe, vecs)
    rng = np.random.default_rng(seed)
    n, h, w = vecs
    x = random_values(rng, idt, (n, h, w, ch))
    # two images of constant extremes: sums at both ends of the output range
    x[0], x[1] = idt.min(), idt.max()
    (want,) = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "GlobalAccPool_rtl")
    odt = op.get_output_datatype()
    assert want.min() >= odt.min() and want.max() <= odt.max()

    (got,), _ = simulate(op, [x], gaps=True, seed=seed)
    assert_equal_ints(got, want, f"{h}x{w}x{ch} {dt_name} -> {odt.name}")

    (got,), res = simulate(op, [x], gaps=False)
    assert_equal_ints(got, want, "no gaps")
    folds = ch // pe
    ii = steady_cycles_per_image(res, "out0_V", folds)
    assert ii == h * w * folds  # one input beat per cycle, outputs overlap the last pixel
    # FINN's estimate (for one image: H*W*folds + folds) counts a separate output phase of
    # `folds` cycles; here the sums leave while the last pixel comes in, so the RTL is
    # faster by 1/(H*W) of the estimate: within 10% from 10 pixels per image up
    exp = one_image_estimate(op)
    assert exp == h * w * folds + folds
    if h * w >= 10:
        assert abs(ii - exp) <= 0.1 * exp, (ii, exp)


def one_image_estimate(op) -> int:
    """FINN's cycle estimate for a single image (its formula adds the drain once per call)."""
    vecs = list(op.get_nodeattr("numInputVectors"))
    op.set_nodeattr("numInputVectors", [1] + vecs[1:])
    try:
        return int(op.get_exp_cycles())
    finally:
        op.set_nodeattr("numInputVectors", vecs)


# default suite: the default model's head (7x7 pixels, 10 INT8 class scores -> INT14, PE 1)
# and an unsigned, PE-folded pool
@pytest.mark.parametrize("dt,ch,pe,vecs", [
    ("INT8", 10, 1, (1000, 7, 7)),
    ("UINT3", 12, 4, (1000, 3, 4)),
])
def test_pool_matches_finn(finn, dt, ch, pe, vecs):
    check_pool(dt, ch, pe, vecs)


@pytest.mark.slow
@pytest.mark.parametrize("dt", ["UINT1", "INT2", "UINT4", "INT8", "INT12"])
@pytest.mark.parametrize("ch,pe", [(10, 1), (8, 8), (16, 4)])
@pytest.mark.parametrize("hw", [(1, 1), (2, 3), (8, 8)])
def test_pool_grid(finn, dt, ch, pe, hw):
    check_pool(dt, ch, pe, (1000,) + hw, seed=ch + pe)


def test_pool_unsupported_reason(finn):
    from hw.custom_op.globalaccpool_rtl import GlobalAccPool_rtl as Op

    model = pool_model(DataType["INT8"], 10, 1, (1, 7, 7))
    node = model.graph.node[0]
    assert Op.unsupported_reason(model, node) is None
    model, node = specialized_node(model)
    assert Op.unsupported_reason(model, node) is None
    node.attribute[[a.name for a in node.attribute].index("inputDataType")].s = b"FLOAT32"
    assert "FLOAT32 is not an integer type" in Op.unsupported_reason(model, node)
    model = one_node_model("GlobalAccPool", [("x", (1, 2, 10), DataType["INT8"])],
                           [("y", (1, 10), DataType["INT8"])], NumChannels=10, PE=1,
                           inputDataType="INT8", numInputVectors=[1, 2])
    assert "is not (images, height, width)" in Op.unsupported_reason(model, model.graph.node[0])
