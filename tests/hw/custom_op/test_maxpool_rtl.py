"""MaxPool_rtl (hw/rtl/max_pool.sv) against numpy's max pool and FINN's python Pool.

The stream a pool reads is the one FINN's depthwise sliding window (ConvolutionInputGenerator_rtl,
SIMD = the pool's PE) sends: per output pixel [channel fold][kernel position][PE]. FINN's python
Pool reads its tensor as [kernel position][channel] (im2col's order), which is the same only for
PE = channels. So the layer alone is fed the stream order of the windows that FINN's python
pair (the window's base op, im2col, then Pool) pools; and the pair test runs the real window in
Verilator and pools its output stream.
"""

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


@pytest.fixture(scope="module")
def maxpool(finn):
    import hw.custom_op.maxpool_rtl as mod  # noqa: F401  (registration)

    return mod


def pool_model(idt, ch, pe, k, ohw, images=1, fn="MaxPool", odt=None):
    """A FINN Pool node over ``images`` x ohw x ohw windows of k x k (square) positions."""
    odt = odt or idt
    oh, ow = ohw
    return one_node_model("Pool", [("x", (images, oh, ow, k * k * ch), idt)], [("y", (images, oh, ow, ch), odt)],
                          Channels=ch, PE=pe, KernelSize=[k, k], Function=fn, OutImgDims=[oh, ow],
                          InputDataType=idt.name, OutputDataType=odt.name, BatchSize=images)


def numpy_max_pool(img: np.ndarray, k: int, stride: int) -> np.ndarray:
    """(N, H, W, C) -> (N, OH, OW, C): the maximum over every k x k window, no padding."""
    win = np.lib.stride_tricks.sliding_window_view(img, (k, k), axis=(1, 2))[:, ::stride, ::stride]
    return win.max(axis=(-2, -1))


# -- the layer alone --------------------------------------------------------------------------

def check_layer(maxpool, dt_name, ch, pe, k, ohw, images=200, seed=0):
    idt = DataType[dt_name]
    rng = np.random.default_rng(seed)
    windows = random_values(rng, idt, (images, *ohw, k * k, ch))
    windows[0] = idt.min()  # windows of one extreme: sign extension shows
    windows[1] = idt.max()
    want = windows.max(axis=-2)  # numpy: the maximum over each window, per channel
    logical = windows.reshape(images, *ohw, k * k * ch)  # im2col's order
    model = pool_model(idt, ch, pe, k, ohw, images)
    (finn_y,) = finn_reference(model, {"x": logical})
    assert_equal_ints(finn_y, want, "FINN python Pool vs numpy")

    stream = maxpool.stream_major(logical, k * k, ch, pe)  # as the sliding window sends it
    rtl_model, op = as_rtl(model, "MaxPool_rtl")
    assert maxpool.MaxPool_rtl.unsupported_reason(rtl_model, rtl_model.graph.node[0]) is None
    what = f"{ohw} {k}x{k} {ch}ch PE {pe} {dt_name}"
    # the op's python execution (what the accelerator's python reference runs) on the stream
    (py_y,) = finn_reference(rtl_model, {"x": stream})
    assert_equal_ints(py_y, want, f"MaxPool_rtl python, {what}")

    (got,), _ = simulate(op, [stream], gaps=True, seed=seed)
    assert_equal_ints(got, want, f"RTL with gaps, {what}")
    assert_equal_ints(got, finn_y, f"RTL vs FINN python, {what}")

    (got,), res = simulate(op, [stream], gaps=False)
    assert_equal_ints(got, want, f"RTL without gaps, {what}")
    # one input beat per cycle: an image takes FINN's estimate (OH*OW*k*k*ch/PE cycles)
    folds = ch // pe
    ii = steady_cycles_per_image(res, "out0_V", ohw[0] * ohw[1] * folds)
    op.set_nodeattr("BatchSize", 1)
    assert ii == op.get_exp_cycles() == ohw[0] * ohw[1] * folds * k * k


# default suite: PE < channels, signed, 3x3; PE = channels, unsigned, 2x2 (the CNV shape)
@pytest.mark.parametrize("dt,ch,pe,k,ohw", [
    ("INT4", 12, 4, 3, (2, 3)),
    ("UINT2", 8, 8, 2, (3, 3)),
])
def test_layer_matches_numpy_and_finn(maxpool, dt, ch, pe, k, ohw):
    check_layer(maxpool, dt, ch, pe, k, ohw)


@pytest.mark.slow
@pytest.mark.parametrize("dt", ["BIPOLAR", "BINARY", "UINT2", "INT4", "INT8"])
@pytest.mark.parametrize("ch,pe", [(6, 1), (6, 3), (6, 6), (16, 4)])
@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("ohw", [(1, 1), (4, 3)])
def test_layer_grid(maxpool, dt, ch, pe, k, ohw):
    check_layer(maxpool, dt, ch, pe, k, ohw, seed=ch + pe + k)


# -- the sliding window's real stream into the pool -------------------------------------------

def window_model(idt, ch, simd, k, stride, ihw, depthwise=1):
    """FINN's ConvolutionInputGenerator_rtl, specialized by FINN (one image: its python is im2col)."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    ih, iw = ihw
    oh, ow = (ih - k) // stride + 1, (iw - k) // stride + 1
    model = one_node_model("ConvolutionInputGenerator", [("x", (1, ih, iw, ch), idt)],
                           [("w", (1, oh, ow, k * k * ch), idt)], ConvKernelDim=[k, k], IFMChannels=ch,
                           IFMDim=[ih, iw], OFMDim=[oh, ow], SIMD=simd, Stride=[stride, stride],
                           Dilation=[1, 1], inputDataType=idt.name, outputDataType=idt.name, depthwise=depthwise)
    model = model.transform(SpecializeLayers("xc7z020clg400-1"))
    assert model.graph.node[0].op_type == "ConvolutionInputGenerator_rtl"
    return model, (oh, ow)


def pair_model(idt, ch, pe, k, stride, ihw):
    """The pair FINN's InferPool makes of a MaxPool, specialized as the flow has it:
    ConvolutionInputGenerator_rtl (depthwise, SIMD = PE) -> Pool_hls."""
    from onnx import helper
    from qonnx.core.modelwrapper import ModelWrapper

    win, ohw = window_model(idt, ch, pe, k, stride, ihw)
    pool, _ = specialized_node(pool_model(idt, ch, pe, k, ohw))
    g = win.graph
    node = pool.graph.node[0]
    node.input[0] = "w"
    g.node.append(node)
    g.value_info.append(helper.make_tensor_value_info("w", 1, [1, *ohw, k * k * ch]))
    del g.output[:]
    g.output.extend(pool.graph.output)
    model = ModelWrapper(win.model)
    for t in ("w", "y"):
        model.set_tensor_datatype(t, idt)
    return model, ohw


def check_pair(maxpool, dt_name, ch, pe, k, stride, ihw, images=3, seed=0):
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.custom_op.registry import getCustomOp

    from hw.accelerator_sim import python_reference
    from hw.sim.node import ensure_hdl, node_design, simulate_node
    from hw.transformation.use_project_rtl import UseProjectRTL

    idt = DataType[dt_name]
    x = random_values(np.random.default_rng(seed), idt, (images, *ihw, ch))
    want = numpy_max_pool(x, k, stride)
    what = f"{ihw} {k}x{k}/{stride} {ch}ch PE {pe} {dt_name}"

    model, ohw = pair_model(idt, ch, pe, k, stride, ihw)
    # FINN's python of the pair as FINN's base ops (the window's is im2col): numpy's max pool
    base = pool_model(idt, ch, pe, k, ohw)
    win_base = one_node_model("ConvolutionInputGenerator", [("x", (1, *ihw, ch), idt)],
                              [("w", (1, *ohw, k * k * ch), idt)],
                              **{a.name: getCustomOp(model.graph.node[0]).get_nodeattr(a.name)
                                 for a in model.graph.node[0].attribute
                                 if a.name in ("ConvKernelDim", "IFMChannels", "IFMDim", "OFMDim", "SIMD", "Stride",
                                               "Dilation", "inputDataType", "outputDataType", "depthwise")})
    finn_pair = np.concatenate([finn_reference(base, {"x": finn_reference(win_base, {"x": x[i:i + 1]})[0]})[0]
                                for i in range(images)])
    assert_equal_ints(finn_pair, want, f"FINN python pair vs numpy, {what}")

    # the flow's swap: Pool_hls -> MaxPool_rtl
    swap = UseProjectRTL()
    model = model.transform(swap)
    assert [n.op_type for n in model.graph.node] == ["ConvolutionInputGenerator_rtl", "MaxPool_rtl"], swap.kept
    win_node, pool_node = model.graph.node

    # the real window in Verilator, with gaps and back-pressure, one image per run
    win_op = ensure_hdl(model, win_node)
    win_design = node_design(win_op)
    stream = np.concatenate([simulate_node(win_op, [x[i:i + 1]], win_design, gap_prob=0.3, stall_prob=0.3,
                                           seed=seed + i)[0][0] for i in range(images)])
    # its order is [channel fold][kernel position][PE], the order max_pool reads
    ctxs = python_reference(model, x)  # the accelerator sim's reference: window "cppsim", pool python
    windows = np.concatenate([c["w"] for c in ctxs])
    assert_equal_ints(stream, windows, f"window RTL vs FINN's window python (cppsim), {what}")
    im2col = np.concatenate([execute_onnx(win_base, {"x": x[i:i + 1]})["w"] for i in range(images)])
    assert_equal_ints(stream, maxpool.stream_major(im2col, k * k, ch, pe), f"window stream order, {what}")

    # that stream through the pool's RTL, with gaps and back-pressure
    pool_op = ensure_hdl(model, pool_node)
    pool_op.set_nodeattr("BatchSize", images)
    (got,), _ = simulate_node(pool_op, [stream.reshape(images, *ohw, -1)], gap_prob=0.3, stall_prob=0.3, seed=seed)
    assert_equal_ints(got, want, f"window RTL -> pool RTL vs numpy, {what}")
    assert_equal_ints(got, finn_pair, f"window RTL -> pool RTL vs FINN python pair, {what}")
    # and the accelerator sim's python reference of the pair
    assert_equal_ints(np.concatenate([c["y"] for c in ctxs]), want, f"accelerator python reference, {what}")
    return windows, want


@pytest.mark.parametrize("dt,ch,pe,k,stride,ihw", [
    ("UINT2", 8, 2, 2, 2, (6, 4)),   # PE < channels: the channel-fold-major stream
    ("INT4", 6, 6, 3, 2, (7, 7)),    # overlapping 3x3 windows, PE = channels
])
def test_window_then_pool(maxpool, dt, ch, pe, k, stride, ihw):
    check_pair(maxpool, dt, ch, pe, k, stride, ihw)


@pytest.mark.slow
@pytest.mark.parametrize("dt", ["BIPOLAR", "UINT2", "INT4", "INT8"])
@pytest.mark.parametrize("ch,pe", [(4, 1), (12, 4), (12, 12)])
@pytest.mark.parametrize("k,stride,ihw", [(2, 2, (8, 8)), (3, 3, (6, 9)), (3, 2, (7, 5))])
def test_window_then_pool_grid(maxpool, dt, ch, pe, k, stride, ihw):
    check_pair(maxpool, dt, ch, pe, k, stride, ihw, seed=ch + pe)


def test_finn_python_pool_misreads_the_folded_window(maxpool):
    """A finding, not a goal: FINN's python Pool on the tensor FINN's own window python gives
    in exec_mode "cppsim" (the stream order) is not a max pool when PE < channels; MaxPool_rtl's
    python reads it right. Says so if FINN changes either side."""
    windows, want = check_pair(maxpool, "UINT2", 8, 2, 2, 2, (4, 4), images=1)
    model = pool_model(DataType["UINT2"], 8, 2, 2, want.shape[1:3])
    (finn_on_stream,) = finn_reference(model, {"x": windows})
    assert not np.array_equal(finn_on_stream, want)


def test_folding_search_costs_the_pool_by_its_model(maxpool):
    """FINN estimates its Pool at 0 LUT; the folding search, building this project's RTL, counts
    a max pool it will swap in by the yosys-fitted model (hw/synth/max_pool_cost.yaml)."""
    from flows.folding import layer_estimates
    from hw.synth.cost_model import predict_pool_luts

    model, _ = pair_model(DataType["UINT2"], 8, 2, 2, 2, (4, 4))
    ours = {e.op_type: e for e in layer_estimates(model, "xc7z020clg400-1", project_rtl=True)}["Pool_hls"]
    finns = {e.op_type: e for e in layer_estimates(model, "xc7z020clg400-1")}["Pool_hls"]
    assert finns.LUT == ours.finn_LUT == 0
    assert ours.LUT == round(predict_pool_luts(2, 2)) > 0
    assert ours.cycles == finns.cycles == 2 * 2 * (8 // 2) * 2 * 2  # pixels x folds x window


# -- what it refuses ----------------------------------------------------------------------------

def test_unsupported_reason(maxpool):
    from qonnx.custom_op.registry import getCustomOp

    Op = maxpool.MaxPool_rtl
    u2 = DataType["UINT2"]
    model = pool_model(u2, 8, 2, 2, (3, 3))
    assert Op.unsupported_reason(model, model.graph.node[0]) is None
    model, node = specialized_node(model)
    assert node.op_type == "Pool_hls" and Op.unsupported_reason(model, node) is None

    avg = pool_model(u2, 8, 8, 2, (3, 3), fn="QuantAvgPool", odt=DataType["UINT4"])
    assert "Function=QuantAvgPool" in Op.unsupported_reason(avg, avg.graph.node[0])
    bad_pe = pool_model(u2, 8, 3, 2, (3, 3))
    assert "PE=3 does not divide Channels=8" in Op.unsupported_reason(bad_pe, bad_pe.graph.node[0])
    flt = pool_model(DataType["FLOAT32"], 8, 8, 2, (3, 3))
    assert "FLOAT32 is not an integer type" in Op.unsupported_reason(flt, flt.graph.node[0])

    # the producer sets the order: a window with another SIMD, or im2col's order with PE < channels
    model, _ = pair_model(u2, 8, 2, 2, 2, (4, 4))
    win, pool = model.graph.node
    assert Op.unsupported_reason(model, pool) is None
    getCustomOp(win).set_nodeattr("SIMD", 4)
    assert "sends its windows 4 channels at a time" in Op.unsupported_reason(model, pool)
    getCustomOp(win).set_nodeattr("SIMD", 8)
    assert "sends im2col's order" in Op.unsupported_reason(model, pool)
    getCustomOp(win).set_nodeattr("SIMD", 2)
    getCustomOp(win).set_nodeattr("depthwise", 0)
    assert "sends im2col's order (depthwise=0" in Op.unsupported_reason(model, pool)
    getCustomOp(pool).set_nodeattr("PE", 8)
    assert Op.unsupported_reason(model, pool) is None  # PE = channels reads im2col's order


def test_swap_keeps_other_pools_hls(maxpool):
    from hw.transformation.use_project_rtl import UseProjectRTL

    model, _ = specialized_node(pool_model(DataType["UINT2"], 8, 8, 2, (3, 3), fn="QuantAvgPool",
                                           odt=DataType["UINT4"]))
    swap = UseProjectRTL()
    model = model.transform(swap)
    assert model.graph.node[0].op_type == "Pool_hls"
    assert swap.kept == {model.graph.node[0].name: "Pool_hls kept: Function=QuantAvgPool: only MaxPool has RTL here"}
