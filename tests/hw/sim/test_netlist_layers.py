"""Every RTL layer type of the flow as the netlist yosys makes of it, in Verilator with the Xilinx
primitive models: the same inputs, gaps and back-pressure as its RTL, outputs equal to FINN's python
execution as integers, and every output beat on the same cycle as the RTL's.

One small case per layer type in the default suite; a grid of foldings, types and RAM styles under
``slow``. yosys runs are cached in build/netlist-tests (one folder per case), the Verilator builds in
build/hw-sim, so a second run only simulates.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.sim.verilator import REPO, Stream, VerilatedDesign
from tests.hw.custom_op.stream_layer_util import finn  # noqa: F401  (fixture)
from tests.hw.sim import netlist_cases as nc
from tests.hw.synth.designs import needs_verilator, needs_yosys

pytestmark = [needs_yosys, needs_verilator]

SYNTH_ROOT = REPO / "build" / "netlist-tests"
RUN = dict(gap_prob=0.3, stall_prob=0.3, seed=3)


def as_ints(a):
    a = np.asarray(a)
    assert np.array_equal(a, np.round(a)), "non-integer values"
    return a.astype(np.int64)


def check(case: nc.Case, case_id: str):
    from hw.sim.netlist import compare_node, first_difference

    cmp = compare_node(case.op, case.inputs, SYNTH_ROOT / case_id, **RUN)
    ref = [as_ints(r) for r in case.reference]
    rtl, net = [as_ints(y) for y in cmp.rtl], [as_ints(y) for y in cmp.netlist]
    assert first_difference(ref, rtl, "FINN", "RTL") is None, first_difference(ref, rtl, "FINN", "RTL")
    assert cmp.difference is None, f"{case_id}: {cmp.difference}"
    assert first_difference(ref, net, "FINN", "netlist") is None
    assert cmp.cycles_equal, f"{case_id}: output beats of the netlist on other cycles than the RTL's"
    return cmp


# -- the default suite: one small case per layer type ----------------------------------------------

DEFAULT = {
    "MVAUBipolar_rtl": lambda: nc.mvau_case(32, 16, 4, 8, "UINT2", "UINT2", "block", vectors=32),
    "ThresholdTable_rtl": lambda: nc.threshold_table_case(12, 2, "INT9", "INT8", -128, 255, False, (2, 3, 3)),
    "DuplicateStreams_rtl": lambda: nc.fork_case("INT8", 8, 2, 2, (4, 3, 3)),
    "ElementwiseAddStreams_rtl": lambda: nc.add_case("INT4", "INT4", None, (4, 3, 3, 8), 2),
    "GlobalAccPool_rtl": lambda: nc.pool_case("INT4", 8, 2, (4, 3, 3)),
    "LabelSelect_rtl": lambda: nc.select_case("INT8", 10, 2, 1, 32),
    "StreamWidthConverter_rtl": lambda: nc.converter_case("INT3", (4, 3, 3, 12), 4, 6),
    "Thresholding_rtl": lambda: nc.thresholding_case(8, 2, 3, "INT8", (2, 4, 4)),
    "ConvolutionInputGenerator_rtl": lambda: nc.swg_case(4, 2, 3, 6, 1, "UINT2"),
    "FMPadding_rtl": lambda: nc.padding_case(4, 2, 5, (1, 1, 1, 1), "INT4"),
    "MaxPool_rtl": lambda: nc.maxpool_case("INT4", 12, 4, 3, (2, 3)),
}


# A fresh clone runs each case cold (a yosys run and two Verilator builds, 25-45 s): the default
# suite keeps the layer types whose netlists hold the most distinct primitives (block-RAM ROMs and
# tables, LUT-RAM line buffers, carry chains); the others run with the slow grid.
IN_DEFAULT_SUITE = {"MVAUBipolar_rtl", "ThresholdTable_rtl", "ConvolutionInputGenerator_rtl", "MaxPool_rtl"}


@pytest.mark.parametrize("kind", [k if k in IN_DEFAULT_SUITE else pytest.param(k, marks=pytest.mark.slow)
                                  for k in sorted(DEFAULT)])
def test_layer_netlist_equals_rtl_and_finn(finn, kind):
    case = DEFAULT[kind]()
    assert case.op.onnx_node.op_type == kind
    check(case, f"default-{kind}")


def fifo_check(depth: int, width: int, beats: int = 300, seed: int = 0):
    """hw.stitch's stream FIFO: RTL and netlist give back the input beats on the same cycles."""
    from hw.sim.axis import pack_words
    from hw.sim.netlist import netlist_design
    from hw.synth.runner import synthesize

    top, files = nc.fifo_sources(SYNTH_ROOT / f"fifo-{depth}-{width}" / "src", depth, width)
    ports = ([Stream("in0_V", width)], [Stream("out0_V", width)])
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(beats, width))
    words = pack_words(x, 1, width)
    rtl = VerilatedDesign(top, files, *ports).run({"in0_V": words}, {"out0_V": beats}, **RUN)
    synth = synthesize(top, files, workdir=SYNTH_ROOT / f"fifo-{depth}-{width}")
    net = netlist_design(top, synth.netlist, *ports).run({"in0_V": words}, {"out0_V": beats}, **RUN)
    assert np.array_equal(rtl.outputs["out0_V"], words)
    assert np.array_equal(net.outputs["out0_V"], words)
    assert np.array_equal(rtl.out_cycles["out0_V"], net.out_cycles["out0_V"])
    return synth


def test_stream_fifo_netlist_in_lut_ram_and_block_ram():
    """hw.stitch's FIFOs: a shallow one in LUT RAM, a deep one (> 256 beats) in block RAM."""
    assert "RAM32M" in fifo_check(32, 10).cells or "RAM64M" in fifo_check(32, 10).cells
    bram = fifo_check(600, 20, beats=1500)
    assert bram.BRAM36 > 0, bram.cells


# -- the grid ---------------------------------------------------------------------------------------

GRID = [
    ("mvau-lut-int4", lambda: nc.mvau_case(36, 12, 3, 12, "INT4", "INT4", "distributed", vectors=40)),
    ("mvau-block-int8", lambda: nc.mvau_case(64, 32, 8, 16, "UINT2", "INT8", "block", vectors=24)),
    ("mvau-noact", lambda: nc.mvau_case(32, 8, 2, 16, "INT2", "INT32", "auto", vectors=24)),
    # a sign output; BIPOLAR inputs are refused by the RTL (they take FINN's xnor form: mvau-xnor)
    ("mvau-bipolar-out", lambda: nc.mvau_case(24, 8, 4, 6, "BINARY", "BIPOLAR", "auto", vectors=40)),
    ("mvau-xnor", lambda: nc.mvau_case(64, 16, 4, 16, "BINARY", "BINARY", "block", vectors=32, xnor=True)),
    ("maxpool-uint2", lambda: nc.maxpool_case("UINT2", 8, 8, 2, (3, 3))),
    ("maxpool-binary", lambda: nc.maxpool_case("BINARY", 16, 2, 2, (2, 2))),
    ("table-shared", lambda: nc.threshold_table_case(48, 3, "INT13", "INT8", -128, 255, True, (2, 4, 4))),
    ("table-uint8", lambda: nc.threshold_table_case(8, 8, "UINT8", "UINT8", 0, 255, False, (2, 6, 6))),
    ("fork-int32-3", lambda: nc.fork_case("INT32", 8, 2, 3, (4, 3, 3))),
    ("fork-bipolar", lambda: nc.fork_case("BIPOLAR", 6, 3, 2, (8, 2, 2))),
    ("add-int32", lambda: nc.add_case("INT8", "INT8", "INT32", (4, 3, 3, 8), 4)),
    ("add-uint", lambda: nc.add_case("UINT8", "UINT3", None, (4, 2, 2, 6), 1)),
    ("pool-int12", lambda: nc.pool_case("INT12", 16, 4, (3, 4, 4))),
    ("pool-uint1", lambda: nc.pool_case("UINT1", 10, 1, (3, 2, 3))),
    ("select-k5", lambda: nc.select_case("INT14", 12, 4, 5, 48)),
    ("select-uint1", lambda: nc.select_case("UINT1", 10, 10, 2, 48)),
    ("swc-narrow", lambda: nc.converter_case("INT16", (4, 3, 3, 12), 12, 1)),
    ("swc-bipolar", lambda: nc.converter_case("BIPOLAR", (4, 3, 3, 12), 3, 2)),
    ("thr-pe1", lambda: nc.thresholding_case(6, 1, 7, "INT6", (2, 3, 3))),
    ("thr-uint", lambda: nc.thresholding_case(16, 16, 1, "UINT4", (2, 3, 3))),
    ("swg-stride2", lambda: nc.swg_case(8, 4, 3, 7, 2, "INT4")),
    ("swg-1x1", lambda: nc.swg_case(6, 6, 1, 4, 1, "UINT2")),
    ("swg-dw", lambda: nc.swg_case(4, 4, 3, 5, 1, "UINT2", depthwise=1)),
    ("pad-asym", lambda: nc.padding_case(6, 3, 4, (0, 1, 1, 0), "UINT2")),
]


@pytest.mark.slow
@pytest.mark.parametrize("case_id", [c for c, _ in GRID])
def test_layer_netlist_grid(finn, case_id):
    check(dict(GRID)[case_id](), f"grid-{case_id}")


@pytest.mark.slow
def test_stream_fifo_netlist_grid():
    for depth, width in [(2, 8), (8, 144), (100, 48), (257, 16), (1024, 72)]:
        fifo_check(depth, width, beats=3 * depth + 50, seed=depth)
