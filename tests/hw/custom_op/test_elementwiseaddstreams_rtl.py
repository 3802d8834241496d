"""ElementwiseAddStreams_rtl (hw/rtl/stream_add.sv) against FINN's python ElementwiseAdd."""

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


def add_model(lhs, rhs, out, shape, pe):
    return one_node_model(
        "ElementwiseAdd", [("a", shape, lhs), ("b", shape, rhs)], [("y", shape, out)],
        lhs_dtype=lhs.name, rhs_dtype=rhs.name, out_dtype=out.name, lhs_shape=list(shape),
        rhs_shape=list(shape), out_shape=list(shape), lhs_style="input", rhs_style="input", PE=pe,
    )


def derived_out(model):
    """FINN's own output type for the two inputs (what MinimizeAccumulatorWidth would set)."""
    from qonnx.custom_op.registry import getCustomOp

    return getCustomOp(model.graph.node[0])._derive_out_dtype(model)


def check_add(lhs_name, rhs_name, out_name, shape, pe, seed=0):
    lhs, rhs = DataType[lhs_name], DataType[rhs_name]
    model = add_model(lhs, rhs, DataType["INT32"], shape, pe)
    out = DataType[out_name] if out_name else derived_out(model)
    model = add_model(lhs, rhs, out, shape, pe)
    if out_name is None and lhs.signed() and not rhs.signed() and lhs.bitwidth() == rhs.bitwidth():
        # finn-plus 1.6.1's _derive_out_dtype takes the lhs as the wider type when the widths
        # are equal, so INTn + UINTn gets INT(n+1), which cannot hold UINTn's maximum plus
        # INTn's: hardware of that width would wrap. Ours refuses the node instead.
        from hw.custom_op.elementwiseaddstreams_rtl import ElementwiseAddStreams_rtl as Op

        assert "cannot hold every sum" in Op.unsupported_reason(model, model.graph.node[0])
        return
    rng = np.random.default_rng(seed)
    a, b = random_values(rng, lhs, shape), random_values(rng, rhs, shape)
    # the sums at both ends of the output range must occur too
    a.reshape(-1)[:2], b.reshape(-1)[:2] = [lhs.min(), lhs.max()], [rhs.min(), rhs.max()]
    (want,) = finn_reference(model, {"a": a, "b": b})
    _, op = as_rtl(model, "ElementwiseAddStreams_rtl")

    (got,), _ = simulate(op, [a, b], gaps=True, seed=seed)
    assert_equal_ints(got, want, f"{lhs_name} + {rhs_name} -> {out.name}")

    (got,), res = simulate(op, [a, b], gaps=False)
    assert_equal_ints(got, want, "no gaps")
    images = shape[0]
    beats_per_image = int(np.prod(shape[1:])) // pe
    ii = steady_cycles_per_image(res, "out0_V", beats_per_image)
    assert ii == beats_per_image  # one beat per cycle
    exp_per_image = op.get_exp_cycles() / images
    assert abs(ii - exp_per_image) <= 0.1 * exp_per_image, (ii, exp_per_image)


# default suite: the default model's residual add (INT4 + INT4 -> INT32, PE 2) and a mixed
# unsigned + signed add at FINN's own minimal output width (UINT5 + INT3 -> INT7)
@pytest.mark.parametrize("lhs,rhs,out,shape,pe", [
    ("INT4", "INT4", "INT32", (40, 5, 5, 8), 2),
    ("UINT5", "INT3", None, (250, 2, 2, 3), 3),
])
def test_add_matches_finn(finn, lhs, rhs, out, shape, pe):
    check_add(lhs, rhs, out, shape, pe)


@pytest.mark.slow
@pytest.mark.parametrize("lhs,rhs", [("INT2", "INT2"), ("UINT1", "UINT1"), ("UINT8", "UINT3"),
                                     ("INT8", "UINT8"), ("INT16", "INT4"), ("UINT4", "INT8")])
@pytest.mark.parametrize("out", [None, "INT32"])
@pytest.mark.parametrize("pe", [1, 4])
def test_add_grid(finn, lhs, rhs, out, pe):
    check_add(lhs, rhs, out, (60, 3, 3, 8), pe, seed=pe)


def test_add_unsupported_reason(finn):
    from hw.custom_op.elementwiseaddstreams_rtl import ElementwiseAddStreams_rtl as Op

    shape = (1, 2, 2, 4)
    model = add_model(DataType["INT4"], DataType["INT4"], DataType["INT5"], shape, 2)
    node = model.graph.node[0]
    assert Op.unsupported_reason(model, node) is None
    # a constant operand (FINN's bias-add style) is not a join of two streams
    model.set_initializer("b", np.ones(shape, dtype=np.float32))
    assert "rhs operand is a constant" in Op.unsupported_reason(model, node)
    # FINN's specialized node, as the flow holds it
    model, node = specialized_node(add_model(DataType["INT4"], DataType["INT4"], DataType["INT32"], shape, 2))
    assert node.op_type == "ElementwiseAdd_hls" and Op.unsupported_reason(model, node) is None
    model, node = specialized_node(add_model(DataType["INT4"], DataType["INT4"], DataType["INT4"], shape, 2))
    assert "cannot hold every sum (-16..14)" in Op.unsupported_reason(model, node)
    model = add_model(DataType["FLOAT32"], DataType["INT4"], DataType["FLOAT32"], shape, 2)
    assert "FLOAT32 is not an integer type" in Op.unsupported_reason(model, model.graph.node[0])
