"""FINN's HLS layers in cppsim (hw/cppsim: FINN's PrepareCppSim/CompileCppSim, g++, finn-hlslib,
hls4ml's ap_types headers), bit-exact against numpy.

Every layer `--hw-backend hls` can emit has a grid here: MVAU with 1-bit weights (thresholds
embedded and raw accumulator), Thresholding, DuplicateStreams, ElementwiseAdd, GlobalAccPool,
LabelSelect, StreamingDataWidthConverter, StreamingConcat and Pool, over data types, PE/SIMD
and shapes, several images per run. Each case builds a one-node graph with FINN's base op,
specializes it to its _hls variant with FINN's SpecializeLayers, compiles FINN's generated C++
and runs it; the reference is numpy on exact integers (FINN's python execution is checked
against the same numpy where it is exact; where it is not, see test_globalaccpool_partial_sums_beyond_float).
The first case of each layer runs in the default suite, the others are `slow`.

The layers that exist both as FINN HLS and as this project's RTL (MVAU, DuplicateStreams,
ElementwiseAdd, GlobalAccPool, LabelSelect) also go through Verilator on the same inputs: the
two hardware implementations must agree.

finn-hlslib is on no registry reachable here: these tests skip, naming what is missing and where
FINN looked, unless FINN_DEPS holds a finn-hlslib checkout (`.ci/run` points it at
../shared/deps). A finn-hlslib that does not compile fails with g++'s first error.
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
)

slow = pytest.mark.slow


def grid(*cases):
    """The first case in the default suite, the rest marked slow."""
    return [cases[0], *(pytest.param(*c, marks=slow) for c in cases[1:])]


def run_cppsim(model, feed):
    """The base-op ``model`` specialized to HLS, compiled and run in cppsim: outputs in order."""
    from hw.cppsim import compile_cppsim, execute_cppsim

    hls, node = specialized_node(model)
    assert node.op_type.endswith("_hls")
    hls = compile_cppsim(hls)
    out = execute_cppsim(hls, feed)
    return [out[o.name] for o in hls.graph.output]


def check(model, feed, want, what):
    """cppsim's outputs equal ``want`` (numpy) as integers; returns them."""
    got = run_cppsim(model, feed)
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_equal_ints(g, np.asarray(w).reshape(g.shape), f"{what} out{i} (cppsim vs numpy)")
    return got


def rtl_agrees(model, rtl_op_type, feed, cppsim_out, what, seed=0):
    """This project's RTL of the same node, in Verilator with input gaps and back-pressure, gives
    the outputs cppsim gave."""
    _, op = as_rtl(model, rtl_op_type)
    got, _ = simulate(op, [feed[i] for i in model.graph.node[0].input if i in feed], gaps=True, seed=seed)
    for i, (g, c) in enumerate(zip(got, cppsim_out)):
        assert_equal_ints(g, c, f"{what} out{i} (Verilator {rtl_op_type} vs cppsim)")


# -- the residual layers -----------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("dt,ch,pe,n_out,images", grid(("UINT2", 6, 3, 2, 3), ("INT32", 8, 2, 2, 2),
                                                        ("INT7", 4, 4, 3, 4), ("BIPOLAR", 16, 8, 2, 2)))
def test_duplicatestreams(cppsim, dt, ch, pe, n_out, images):
    dt = DataType[dt]
    shape = (images, 4, 4, ch)
    # FINN's InferDuplicateStreamsLayer makes free-running nodes with the hls::vector interface:
    # finn-hlslib's StreamingDup moves one word per call, FINN's cppsim loops it until idle
    model = one_node_model("DuplicateStreams", [("x", shape, dt)], [(f"y{i}", shape, dt) for i in range(n_out)],
                           NumChannels=ch, PE=pe, NumOutputStreams=n_out, inputDataType=dt.name,
                           numInputVectors=list(shape[:-1]), cpp_interface="hls_vector", hls_style="freerunning")
    x = random_values(np.random.default_rng(0), dt, shape)
    got = check(model, {"x": x}, [x] * n_out, "fork")
    if dt.name != "BIPOLAR":  # this project's fork carries integer streams
        rtl_agrees(model, "DuplicateStreams_rtl", {"x": x}, got, "fork")


def add_model(lhs, rhs, pe, shape):
    from qonnx.custom_op.registry import getCustomOp

    attrs = dict(lhs_dtype=lhs.name, rhs_dtype=rhs.name, out_dtype="INT32", lhs_shape=list(shape),
                 rhs_shape=list(shape), out_shape=list(shape), lhs_style="input", rhs_style="input", PE=pe)
    model = one_node_model("ElementwiseAdd", [("a", shape, lhs), ("b", shape, rhs)], [("y", shape, DataType["INT32"])],
                           **attrs)
    out = getCustomOp(model.graph.node[0])._derive_out_dtype(model)  # FINN's own output type
    if out.bitwidth() < 32:
        getCustomOp(model.graph.node[0]).set_nodeattr("out_dtype", out.name)
        model.set_tensor_datatype("y", out)
    return model


@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("lhs,rhs,pe,images", grid(("INT8", "UINT4", 4, 3), ("INT32", "INT32", 2, 2),
                                                   ("UINT2", "INT3", 1, 2), ("INT9", "INT9", 8, 4)))
def test_elementwise_add(cppsim, lhs, rhs, pe, images):
    lhs, rhs = DataType[lhs], DataType[rhs]
    shape = (images, 3, 3, 8)
    model = add_model(lhs, rhs, pe, shape)
    rng = np.random.default_rng(1)
    # sums must fit FINN's float32 containers (exact to 2**24): wide inputs stay within 2**23
    a, b = (np.clip(random_values(rng, dt, shape), -(2**23), 2**23) for dt in (lhs, rhs))
    exact = a.astype(np.int64) + b.astype(np.int64)
    got = check(model, {"a": a, "b": b}, [exact], "add")
    # FINN's python adds in float32, exact below 2**24; this project's RTL needs an output type
    # that holds every sum (the flow narrows adds so), which INT32 + INT32 into INT32 is not
    if model.get_tensor_datatype("y").bitwidth() < 32:
        assert_equal_ints(finn_reference(model, {"a": a, "b": b})[0], exact, "FINN python add vs numpy")
        rtl_agrees(model, "ElementwiseAddStreams_rtl", {"a": a, "b": b}, got, "add")


# -- the head ----------------------------------------------------------------------------------

def gap_model(idt, ch, pe, hw, images=1):
    """GlobalAccPool; for cppsim declared for one image (hw.cppsim.ONE_IMAGE_PER_CALL), which
    execute_cppsim then runs per image."""
    from qonnx.custom_op.registry import getCustomOp

    model = one_node_model("GlobalAccPool", [("x", (images, hw, hw, ch), idt)],
                           [("y", (images, 1, 1, ch), DataType["INT32"])],
                           NumChannels=ch, PE=pe, inputDataType=idt.name, numInputVectors=[images, hw, hw])
    model.set_tensor_datatype("y", getCustomOp(model.graph.node[0]).get_output_datatype())
    return model


@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("dt,ch,pe,hw,images", grid(("INT4", 6, 3, 3, 3), ("UINT2", 8, 2, 4, 4),
                                                    ("INT32", 4, 1, 2, 3), ("INT8", 12, 12, 7, 2)))
def test_globalaccpool(cppsim, dt, ch, pe, hw, images):
    idt = DataType[dt]
    model = gap_model(idt, ch, pe, hw)
    x = random_values(np.random.default_rng(2), idt, (images, hw, hw, ch))
    x[1] = max(int(idt.min()), -(2**20))  # constant extremes: sums at both ends of the range
    x[-1] = min(int(idt.max()), 2**20)
    got = check(model, {"x": x}, [x.astype(np.int64).sum(axis=(1, 2), keepdims=True)], "pool")
    rtl_agrees(gap_model(idt, ch, pe, hw, images), "GlobalAccPool_rtl", {"x": x}, got, "pool")


@pytest.mark.slow
@pytest.mark.cppsim
def test_globalaccpool_partial_sums_beyond_float(cppsim):
    """Sums whose partial sums leave float32's exact range (FINN's python GlobalAccPool adds in
    float32 and is off here): cppsim gives the exact integer, as must every reference this
    project compares against. (Results themselves travel in FINN's float32 containers, so they
    are kept within 2**24.)"""
    idt, hw, big = DataType["INT32"], 4, 2**24 - 1
    x = np.zeros((2, hw, hw, 2), dtype=np.int64)
    x[..., 0] = np.array([big, big, big, 3, -big, -big, -big, 5] * 2).reshape(hw, hw)
    x[..., 1] = np.array([big, -big + 2, big, -big + 2, big, 1, -big, 7] * 2).reshape(hw, hw)
    x[1] = -x[1]
    exact = x.sum(axis=(1, 2), keepdims=True)
    assert np.abs(exact).max() < 2**24
    # the input is one where float32 accumulation goes wrong
    assert not np.array_equal(x.astype(np.float32).sum(axis=(1, 2), keepdims=True, dtype=np.float32), exact)
    check(gap_model(idt, 2, 1, hw), {"x": x.astype(np.float32)}, [exact], "pool, partial sums beyond 2**24")


def topk_lower_label_first(x: np.ndarray, k: int) -> np.ndarray:
    """Labels of the k largest values per row, largest first, among equal values the lower
    label first (ONNX TopK, FINN's python LabelSelect, this project's LabelSelect_rtl)."""
    return np.argsort(-x.astype(np.int64), axis=-1, kind="stable")[..., :k]


def labelselect_model(idt, labels, pe, k, vectors=1):
    """LabelSelect; for cppsim declared for one vector (hw.cppsim.ONE_IMAGE_PER_CALL), which
    execute_cppsim then runs per vector."""
    from qonnx.custom_op.registry import getCustomOp

    model = one_node_model("LabelSelect", [("x", (vectors, labels), idt)], [("y", (vectors, k), DataType["UINT8"])],
                           Labels=labels, PE=pe, K=k, inputDataType=idt.name, numInputVectors=[vectors])
    model.set_tensor_datatype("y", getCustomOp(model.graph.node[0]).get_output_datatype())
    return model


@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("dt,labels,pe,k", grid(("INT8", 10, 2, 3), ("INT32", 10, 2, 1), ("UINT4", 12, 3, 3),
                                                ("INT8", 7, 7, 2), ("INT16", 16, 4, 16)))
def test_labelselect(cppsim, dt, labels, pe, k):
    idt = DataType[dt]
    vectors = 12
    model = labelselect_model(idt, labels, pe, k)
    rng = np.random.default_rng(3)
    # values above the type's minimum (ties at the minimum: test_labelselect_ties_at_minimum)
    lo, hi = max(int(idt.min()), -(2**24)) + 1, min(int(idt.max()), 2**24)
    x = rng.integers(lo, hi + 1, size=(vectors, labels)).astype(np.float32)
    x[0] = x[0, 0]  # all labels tied: lower label first
    x[1, ::2] = hi  # several tied at the top
    x[2] = lo
    got = check(model, {"x": x}, [topk_lower_label_first(x, k)], "top-k")
    rtl_agrees(labelselect_model(idt, labels, pe, k, vectors), "LabelSelect_rtl", {"x": x}, got, "top-k")


def hlslib_topk(x: np.ndarray, k: int, type_min: int) -> np.ndarray:
    """finn-hlslib's LabelSelect_Batch rule: its list starts as k entries (type minimum, label
    0) and a value enters only when strictly greater, so slots that no value above the minimum
    reaches keep label 0."""
    ranked = topk_lower_label_first(x, k)
    above = np.take_along_axis(x.astype(np.int64), ranked, axis=-1) > type_min
    return np.where(above, ranked, 0)


@pytest.mark.cppsim
def test_labelselect_ties_at_minimum(cppsim):
    """Where fewer than K values exceed the input type's minimum, finn-hlslib fills the rest with
    label 0, while ONNX TopK (FINN's python, Brevitas' argmax/topk semantics) gives the lowest
    labels holding the minimum. This project's LabelSelect_rtl follows TopK, the model's meaning
    (tests/hw/custom_op/test_labelselect_rtl.py); the two differ only in such slots."""
    idt, labels, k = DataType["INT8"], 6, 3
    x = np.full((3, labels), -128, dtype=np.float32)
    x[1, 4] = 5  # one value above the minimum
    x[2, [1, 5]] = [-3, 7]  # two
    model = labelselect_model(idt, labels, 2, k)
    got = check(model, {"x": x}, [hlslib_topk(x, k, -128)], "top-k at the minimum")[0]
    assert not np.array_equal(got, topk_lower_label_first(x, k))  # the difference, as stated


# -- the convolution / dense layers -------------------------------------------------------------

@pytest.mark.cppsim
@pytest.mark.parametrize("mw,mh,pe,simd,idt,out", grid(
    (64, 16, 4, 16, "UINT2", "UINT2"),   # the WRN's layers: 2-bit in, thresholds to 2-bit out
    (27, 8, 2, 9, "UINT8", "INT32"),     # first layer: 8-bit pixels, raw accumulator
    (32, 6, 6, 32, "INT4", "INT4"),      # signed in and out, fully unfolded
    (72, 12, 3, 8, "UINT2", "BIPOLAR"),  # sign activation (BinaryDenseNet, ResNetE)
    (16, 4, 1, 1, "INT8", "INT8"),       # fully folded
))
def test_mvau_binary_weights(cppsim, mw, mh, pe, simd, idt, out):
    from tests.hw.custom_op.test_mvau_bipolar_rtl import ACTIVATIONS, mvau_model
    from tests.hw.custom_op.test_mvau_bipolar_rtl import as_rtl as mvau_as_rtl

    model, x, _ = mvau_model(mw, mh, pe, simd, idt, out, vec_shape=(3, 5, 5), seed=4)
    w = model.get_initializer("weights").astype(np.int64)
    acc = x.astype(np.int64).reshape(-1, mw) @ w
    if out == "INT32":
        want = acc
    else:  # thresholds: count passed per output channel, + ActVal; BIPOLAR maps 0/1 to -1/+1
        thr = model.get_initializer("thresh").astype(np.int64)
        want = (acc[:, :, None] >= thr[None]).sum(axis=2) + ACTIVATIONS[out][1]
        if out == "BIPOLAR":
            want = 2 * want - 1
    got = check(model, {"inp": x}, [want.reshape(x.shape[:-1] + (mh,))], "mvau")
    _, op = mvau_as_rtl(model)
    (rtl,), _ = simulate(op, [x], gaps=True)
    assert_equal_ints(rtl, got[0], "mvau (Verilator MVAUBipolar_rtl vs cppsim)")


def thresholding_model(idt, odt, ch, pe, act, shape, thr):
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node("Thresholding", ["x", "thresh"], ["y"], domain="finn.custom_op.fpgadataflow",
                            backend="fpgadataflow", name="Thresholding_0", NumChannels=ch, PE=pe,
                            numSteps=thr.shape[1], inputDataType=idt.name, weightDataType=idt.name,
                            outputDataType=odt.name, ActVal=act, numInputVectors=list(shape[:-1]))
    graph = helper.make_graph([node], "thr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="wrn1bit-test"))
    model.set_tensor_datatype("x", idt)
    model.set_tensor_datatype("y", odt)
    model.set_initializer("thresh", thr)
    model.set_tensor_datatype("thresh", idt)
    return model


@pytest.mark.cppsim
@pytest.mark.parametrize("ch,pe,idt,odt,act", grid((8, 2, "INT16", "UINT2", 0), (6, 3, "INT8", "INT4", -8),
                                                   (4, 4, "UINT8", "BIPOLAR", 0), (16, 1, "INT12", "UINT3", 0)))
def test_thresholding(cppsim, ch, pe, idt, odt, act):
    idt_, odt_ = DataType[idt], DataType[odt]
    steps = 1 if odt == "BIPOLAR" else 2 ** odt_.bitwidth() - 1
    shape = (3, 4, 4, ch)
    rng = np.random.default_rng(5)
    x = random_values(rng, idt_, shape)
    lo, hi = max(int(idt_.min()), -(2**20)), min(int(idt_.max()), 2**20)
    thr = np.sort(rng.integers(lo, hi + 1, size=(ch, steps)), axis=1).astype(np.float32)
    counts = (x.reshape(-1, ch)[:, :, None] >= thr[None]).sum(axis=2) + act
    if odt == "BIPOLAR":
        counts = 2 * counts - 1
    check(thresholding_model(idt_, odt_, ch, pe, act, shape, thr), {"x": x}, [counts], "thresholds")


# -- the stream plumbing: width converters, concatenation, pooling --------------------------------

@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("dt,ch,in_pe,out_pe", grid(("UINT2", 24, 4, 6), ("INT8", 16, 16, 4), ("INT5", 12, 3, 12),
                                                    ("BIPOLAR", 32, 8, 32)))
def test_datawidthconverter(cppsim, dt, ch, in_pe, out_pe):
    dt = DataType[dt]
    shape = (3, 2, 2, ch)
    bits = dt.bitwidth()
    model = one_node_model("StreamingDataWidthConverter", [("x", shape, dt)], [("y", shape, dt)],
                           inShape=list(shape), outShape=list(shape), inWidth=in_pe * bits, outWidth=out_pe * bits,
                           dataType=dt.name)
    x = random_values(np.random.default_rng(6), dt, shape)
    check(model, {"x": x}, [x], "width converter")


@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("channels,dts,simd", grid(((4, 8), ("UINT2", "UINT2"), 2), ((6, 3, 9), ("INT4", "INT4", "INT4"), 3),
                                                  ((8, 16), ("INT2", "UINT2"), 8), ((2, 4), ("UINT3", "UINT4"), 1)))
def test_streamingconcat(cppsim, channels, dts, simd):
    images, hw = 3, 3
    dts = [DataType[d] for d in dts]
    widest = max(dts, key=lambda d: d.bitwidth())
    ins = [(f"x{i}", (images, hw, hw, c), d) for i, (c, d) in enumerate(zip(channels, dts))]
    out_shape = (images, hw, hw, sum(channels))
    model = one_node_model("StreamingConcat", ins, [("y", out_shape, widest)], SIMD=simd,
                           ChannelsPerStream=list(channels), inputDataTypes=[d.name for d in dts],
                           numInputVectors=[images, hw, hw], cpp_interface="hls_vector", hls_style="freerunning")
    rng = np.random.default_rng(7)
    feed = {name: random_values(rng, d, shape) for name, shape, d in ins}
    check(model, feed, [np.concatenate(list(feed.values()), axis=-1)], "concat")


@pytest.mark.cppsim
def test_streamingconcat_of_bipolar_streams_sends_bits(cppsim):
    """A finding, not a goal: FINN types the concatenation of BIPOLAR streams INT2 (from the
    inputs' range, -1..1) while its HLS copies the bits, so -1 leaves as 0 where FINN's python
    says -1. The flow never concatenates bipolar streams (BinaryDenseNet's dense stream is
    4-bit); this test says so if FINN changes either side."""
    bip = DataType["BIPOLAR"]
    ins = [(f"x{i}", (1, 2, 2, c), bip) for i, c in enumerate((4, 8))]
    model = one_node_model("StreamingConcat", ins, [("y", (1, 2, 2, 12), DataType["INT2"])], SIMD=4,
                           ChannelsPerStream=[4, 8], inputDataTypes=["BIPOLAR", "BIPOLAR"], numInputVectors=[1, 2, 2],
                           cpp_interface="hls_vector", hls_style="freerunning")
    rng = np.random.default_rng(10)
    feed = {name: random_values(rng, bip, shape) for name, shape, _ in ins}
    values = np.concatenate(list(feed.values()), axis=-1)
    assert_equal_ints(finn_reference(model, feed)[0], values, "FINN python concat vs numpy")
    check(model, feed, [(values + 1) // 2], "concat of bipolar streams (bits)")


def stream_order(x: np.ndarray, k2: int, ch: int, pe: int) -> np.ndarray:
    """A window tensor (..., k2 * ch) in FINN's logical [kernel][channel] order as a depthwise
    sliding window sends it: [channel fold][kernel][PE] (FINN's ConvolutionInputGenerator_rtl
    docstring: the depthwise layout differs)."""
    lead = x.shape[:-1]
    return x.reshape(*lead, k2, ch // pe, pe).swapaxes(-3, -2).reshape(*lead, k2 * ch)


def pool_model(fn, idt, odt, ch, pe, k, ohw, images=1):
    """Pool; for cppsim declared for one image (hw.cppsim.ONE_IMAGE_PER_CALL)."""
    return one_node_model("Pool", [("x", (images, ohw, ohw, k * k * ch), idt)], [("y", (images, ohw, ohw, ch), odt)],
                          Channels=ch, PE=pe, KernelSize=[k, k], Function=fn, OutImgDims=[ohw, ohw],
                          InputDataType=idt.name, OutputDataType=odt.name, BatchSize=images, cpp_interface="hls_vector")


@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("fn,dt,ch,pe,k", grid(("MaxPool", "UINT2", 8, 4, 2), ("MaxPool", "INT4", 6, 6, 3),
                                               ("MaxPool", "BINARY", 16, 2, 2), ("AccPool", "UINT4", 4, 2, 2),
                                               ("MaxPool", "UINT8", 12, 3, 3)))
def test_pool(cppsim, fn, dt, ch, pe, k):
    """Pool_hls reads its window in the order a depthwise sliding window sends it (PE < channels:
    [fold][kernel][PE], not FINN's python's [kernel][channel]); fed in that order it is exact."""
    idt = DataType[dt]
    images, ohw = 3, 3
    odt = idt if fn == "MaxPool" else DataType["UINT8"]
    x = random_values(np.random.default_rng(8), idt, (images, ohw, ohw, k * k, ch))
    fold = np.max if fn == "MaxPool" else np.sum
    want = fold(x.astype(np.int64), axis=-2)
    logical = x.reshape(images, ohw, ohw, k * k * ch)
    assert_equal_ints(finn_reference(pool_model(fn, idt, odt, ch, pe, k, ohw, images),  {"x": logical})[0], want, "FINN python pool vs numpy")
    check(pool_model(fn, idt, odt, ch, pe, k, ohw), {"x": stream_order(logical, k * k, ch, pe)}, [want], "pool")


@pytest.mark.cppsim
@needs_verilator
@pytest.mark.parametrize("ch,pe", grid((8, 2), (6, 6)))
def test_window_then_pool(cppsim, ch, pe):
    """The pair the flow emits for a MaxPool (BinaryDenseNet's transitions): FINN's depthwise
    ConvolutionInputGenerator_rtl in Verilator, its output stream into Pool_hls in cppsim, with
    the window's SIMD = the pool's PE as FINN's SetFolding sets them; equal to numpy's max pool."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from hw.sim.node import ensure_hdl, node_design, simulate_node

    idt, k, ihw, images = DataType["UINT2"], 2, 6, 2
    ohw = ihw // k
    swg = one_node_model("ConvolutionInputGenerator", [("x", (1, ihw, ihw, ch), idt)],
                         [("w", (1, ohw, ohw, k * k * ch), idt)], ConvKernelDim=[k, k], IFMChannels=ch,
                         IFMDim=[ihw, ihw], OFMDim=[ohw, ohw], SIMD=pe, Stride=[k, k], Dilation=[1, 1],
                         inputDataType=idt.name, outputDataType=idt.name, depthwise=1)
    swg = swg.transform(SpecializeLayers("xc7z020clg400-1"))
    assert swg.graph.node[0].op_type == "ConvolutionInputGenerator_rtl"
    x = random_values(np.random.default_rng(9), idt, (images, ihw, ihw, ch))
    op = ensure_hdl(swg, swg.graph.node[0])
    design = node_design(op)
    windows = np.concatenate([simulate_node(op, [x[i:i + 1]], design, gap_prob=0.3, stall_prob=0.3, seed=i)[0][0]
                              for i in range(images)])
    want = x.astype(np.int64).reshape(images, ohw, k, ohw, k, ch).max(axis=(2, 4))
    check(pool_model("MaxPool", idt, idt, ch, pe, k, ohw), {"x": windows}, [want], "window + pool")


# -- one-line errors (run everywhere) -----------------------------------------------------------

def one_hls_node_model():
    dt = DataType["UINT4"]
    model = one_node_model("DuplicateStreams", [("x", (4, 8), dt)], [("y0", (4, 8), dt), ("y1", (4, 8), dt)],
                           NumChannels=8, PE=2, NumOutputStreams=2, inputDataType=dt.name, numInputVectors=[4],
                           cpp_interface="hls_vector", hls_style="freerunning")
    return specialized_node(model)[0]


def test_missing_finn_hlslib_is_one_line(finn_deps_at, tmp_path):
    from common.errors import UserError
    from hw.cppsim import CppSimUnavailable, compile_cppsim

    empty = tmp_path / "deps"
    empty.mkdir()
    finn_deps_at(empty)
    with pytest.raises(CppSimUnavailable) as e:
        compile_cppsim(one_hls_node_model())
    msg = str(e.value)
    assert isinstance(e.value, UserError)
    assert "\n" not in msg
    assert "finn-hlslib" in msg and str(empty / "finn-hlslib") in msg and "FINN_DEPS" in msg


def test_broken_finn_hlslib_fails_with_the_first_compiler_error(cppsim, finn_deps_at, tmp_path):
    """A finn-hlslib that does not compile (here: a copy of the one in use, with an #error added
    to bnn-library.h) is a failure naming g++'s first error, not a skip."""
    import shutil

    from hw.cppsim import CppSimBuildError, compile_cppsim, finn_hlslib_dir

    deps = tmp_path / "deps"
    shutil.copytree(finn_hlslib_dir(), deps / "finn-hlslib")
    header = deps / "finn-hlslib" / "bnn-library.h"
    header.chmod(0o644)
    header.write_text("#error this finn-hlslib is broken on purpose\n" + header.read_text())
    finn_deps_at(deps)
    with pytest.raises(CppSimBuildError) as e:
        compile_cppsim(one_hls_node_model())
    msg = str(e.value)
    assert "\n" not in msg and "bnn-library.h" in msg and "error: #error this finn-hlslib is broken on purpose" in msg


def test_missing_gpp_is_one_line(finn_deps_at, tmp_path, monkeypatch):
    from hw.cppsim import CppSimUnavailable, require_cppsim

    deps = tmp_path / "deps"
    (deps / "finn-hlslib").mkdir(parents=True)
    (deps / "finn-hlslib" / "bnn-library.h").write_text("// present\n")
    finn_deps_at(deps)
    monkeypatch.setenv("PATH", str(tmp_path / "no-bin"))
    with pytest.raises(CppSimUnavailable) as e:
        require_cppsim()
    msg = str(e.value)
    assert "\n" not in msg and "g++ (not on PATH)" in msg and "finn-hlslib" not in msg
