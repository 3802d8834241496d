"""StreamWidthConverter_rtl (hw/rtl/stream_width_convert.sv) against the converter's meaning:
the tensor comes out as it went in, only in beats of another width. The output, unpacked in
beats of outWidth, must equal the input integer for integer, with input gaps and output
back-pressure; without them the converter must keep the wider side at one beat per cycle."""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from tests.hw.custom_op.stream_layer_util import (
    RTL_DOMAIN,
    as_rtl,
    assert_equal_ints,
    finn,  # noqa: F401  (fixture)
    finn_reference,
    needs_verilator,
    one_node_model,
    random_values,
    simulate,
    steady_cycles_per_image,
)

pytestmark = needs_verilator


def converter_model(dt, shape, in_elems, out_elems):
    bits = dt.bitwidth()
    return one_node_model(
        "StreamingDataWidthConverter", [("x", shape, dt)], [("y", shape, dt)],
        inShape=list(shape), outShape=list(shape), inWidth=in_elems * bits, outWidth=out_elems * bits,
        dataType=dt.name,
    )


def check_converter(dt_name, shape, in_elems, out_elems, seed=0):
    dt = DataType[dt_name]
    model = converter_model(dt, shape, in_elems, out_elems)
    x = random_values(np.random.default_rng(seed), dt, shape)
    _, op = as_rtl(model, "StreamWidthConverter_rtl")

    got, _ = simulate(op, [x], gaps=True, seed=seed)
    assert_equal_ints(got[0], x, "converter output vs its input")

    got, res = simulate(op, [x], gaps=False)
    assert_equal_ints(got[0], x, "converter output vs its input (no gaps)")
    elems = int(np.prod(shape[1:]))
    out_beats = elems // out_elems
    # the wider side moves one beat per cycle: an image takes as many cycles as the narrow side has beats
    ii = steady_cycles_per_image(res, "out0_V", out_beats)
    assert ii == max(elems // in_elems, out_beats), (ii, elems // in_elems, out_beats)


# default suite: the default pynq-z2 build's widest narrowing (a 144-channel UINT2 pixel to 6
# elements), a widening, and a ratio that is not whole (through the common multiple)
@pytest.mark.parametrize("dt,shape,in_elems,out_elems", [
    ("UINT2", (3, 2, 2, 144), 144, 6),
    ("INT32", (4, 3, 3, 8), 2, 8),
    ("UINT2", (3, 3, 3, 72), 24, 36),
])
def test_converter_keeps_the_tensor(finn, dt, shape, in_elems, out_elems):
    check_converter(dt, shape, in_elems, out_elems)


@pytest.mark.slow
@pytest.mark.parametrize("dt", ["BIPOLAR", "UINT1", "INT3", "UINT4", "INT16"])
@pytest.mark.parametrize("in_elems,out_elems", [(2, 4), (4, 2), (12, 1), (1, 12), (4, 6), (6, 4), (8, 12), (3, 2)])
def test_converter_grid(finn, dt, in_elems, out_elems):
    check_converter(dt, (5, 2, 2, 24), in_elems, out_elems, seed=in_elems * 13 + out_elems)


def test_converter_unsupported_reason(finn):
    from hw.custom_op.streamwidthconverter_rtl import StreamWidthConverter_rtl

    dt = DataType["UINT2"]
    model = converter_model(dt, (1, 2, 2, 12), 4, 6)
    node = model.graph.node[0]
    assert StreamWidthConverter_rtl.unsupported_reason(model, node) is None
    # 2 x 2 x 5 UINT2 = 40 bits: not a whole number of 24-bit words (lcm of 8 and 12)
    bad = converter_model(dt, (1, 2, 2, 5), 4, 6)
    assert "not a whole number of 24-bit words" in StreamWidthConverter_rtl.unsupported_reason(bad, bad.graph.node[0])
    same = converter_model(dt, (1, 2, 2, 12), 6, 6)
    assert "nothing to convert" in StreamWidthConverter_rtl.unsupported_reason(same, same.graph.node[0])


def test_converter_from_specialized_node_in_rtlsim(finn):
    """The path the flow takes: FINN's specialized converter swapped for ours, executed by qonnx's
    executor in rtlsim mode (Verilator via the base)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from hw.custom_op.streamwidthconverter_rtl import StreamWidthConverter_rtl
    from hw.sim.node import ensure_hdl

    dt, shape = DataType["INT4"], (2, 3, 3, 16)
    model = converter_model(dt, shape, 16, 4)
    x = random_values(np.random.default_rng(3), dt, shape)
    model = model.transform(SpecializeLayers("xc7z020clg400-1"))
    node = model.graph.node[0]
    assert node.op_type == "StreamingDataWidthConverter_rtl", node.op_type  # finn-rtllib's, FINN's choice
    assert StreamWidthConverter_rtl.unsupported_reason(model, node) is None
    node.op_type, node.domain = "StreamWidthConverter_rtl", RTL_DOMAIN
    op = ensure_hdl(model, node)
    op.set_nodeattr("exec_mode", "rtlsim")
    got = finn_reference(model, {"x": x})  # now runs the RTL
    assert_equal_ints(got[0], x, "converter in rtlsim")
