"""DuplicateStreams_rtl (hw/rtl/stream_fork.sv) against FINN's python DuplicateStreams."""

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
    specialized_node,
    steady_cycles_per_image,
)

pytestmark = needs_verilator


def fork_model(dt, ch, pe, n_out, vecs):
    shape = tuple(vecs) + (ch,)
    return one_node_model(
        "DuplicateStreams", [("x", shape, dt)], [(f"y{i}", shape, dt) for i in range(n_out)],
        NumChannels=ch, PE=pe, NumOutputStreams=n_out, inputDataType=dt.name, numInputVectors=list(vecs),
    )


def check_fork(dt_name, ch, pe, n_out, vecs, seed=0):
    dt = DataType[dt_name]
    model = fork_model(dt, ch, pe, n_out, vecs)
    rng = np.random.default_rng(seed)
    x = random_values(rng, dt, tuple(vecs) + (ch,))
    want = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "DuplicateStreams_rtl")

    got, _ = simulate(op, [x], gaps=True, seed=seed)
    assert len(got) == n_out
    for i in range(n_out):
        assert_equal_ints(got[i], want[i], f"out{i}")

    # throughput without gaps: one beat per cycle on every output, as FINN's estimate says
    got, res = simulate(op, [x], gaps=False)
    for i in range(n_out):
        assert_equal_ints(got[i], want[i], f"out{i} (no gaps)")
    beats_per_image = int(np.prod(vecs[1:])) * ch // pe
    ii = steady_cycles_per_image(res, "out0_V", beats_per_image)
    assert ii == beats_per_image
    exp_per_image = op.get_exp_cycles() / vecs[0]
    assert abs(ii - exp_per_image) <= 0.1 * exp_per_image, (ii, exp_per_image)


# default suite: the default model's shape class (INT32 residual stream, PE 2, two outputs)
# and a narrow unsigned stream with three outputs
@pytest.mark.parametrize("dt,ch,pe,n_out,vecs", [
    ("INT32", 8, 2, 2, (40, 5, 5)),
    ("UINT2", 6, 3, 3, (250, 2, 2)),
])
def test_fork_matches_finn(finn, dt, ch, pe, n_out, vecs):
    check_fork(dt, ch, pe, n_out, vecs)


@pytest.mark.slow
@pytest.mark.parametrize("dt", ["BIPOLAR", "UINT1", "INT2", "UINT4", "INT7", "INT16"])
@pytest.mark.parametrize("pe", [1, 4])
@pytest.mark.parametrize("n_out", [2, 3])
def test_fork_grid(finn, dt, pe, n_out):
    check_fork(dt, 8, pe, n_out, (60, 3, 3), seed=pe * 10 + n_out)


def test_fork_unsupported_reason(finn):
    from hw.custom_op.duplicatestreams_rtl import DuplicateStreams_rtl

    model = fork_model(DataType["INT4"], 8, 2, 2, (1, 2, 2))
    node = model.graph.node[0]
    assert DuplicateStreams_rtl.unsupported_reason(model, node) is None
    node.output.pop()  # two outputs declared, one present
    assert "NumOutputStreams=2" in DuplicateStreams_rtl.unsupported_reason(model, node)
    model = fork_model(DataType["INT4"], 8, 3, 2, (1, 2, 2))
    assert "PE=3 does not divide NumChannels=8" in DuplicateStreams_rtl.unsupported_reason(model, model.graph.node[0])


def test_fork_from_specialized_node_in_rtlsim(finn):
    """The path the flow takes: FINN's specialized _hls node (with its HLS-only attributes)
    swapped for ours, executed by qonnx's executor in rtlsim mode (Verilator via the base)."""
    from hw.sim.node import ensure_hdl

    dt, vecs = DataType["INT4"], (4, 3, 3)
    model = fork_model(dt, 8, 4, 3, vecs)
    x = random_values(np.random.default_rng(1), dt, vecs + (8,))
    want = finn_reference(model, {"x": x})
    model, node = specialized_node(model)
    from hw.custom_op.duplicatestreams_rtl import DuplicateStreams_rtl

    assert DuplicateStreams_rtl.unsupported_reason(model, node) is None
    node.op_type, node.domain = "DuplicateStreams_rtl", RTL_DOMAIN
    op = ensure_hdl(model, node)
    op.set_nodeattr("exec_mode", "rtlsim")
    got = finn_reference(model, {"x": x})  # now runs the RTL
    for i in range(3):
        assert_equal_ints(got[i], want[i], f"out{i}")
