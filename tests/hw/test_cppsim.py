"""FINN's HLS layers in cppsim (hw/cppsim.py: FINN's PrepareCppSim/CompileCppSim, g++, finn-hlslib,
hls4ml's ap_types headers) against FINN's python execution of the same node, bit-exact.

Each case builds a one-node graph with FINN's base op (the layers `--hw-backend hls` keeps:
MVAU with 1-bit weights, Thresholding, DuplicateStreams, ElementwiseAdd, GlobalAccPool,
LabelSelect), takes FINN's python execution as the reference, specializes the node to its
_hls variant with FINN's SpecializeLayers, compiles FINN's generated C++ and runs it on the same
random integers (extremes included); every output element must be equal as an integer.

finn-hlslib is on no registry reachable here: these tests skip, naming what is missing and where
FINN looked, unless FINN_DEPS holds a finn-hlslib checkout (``FINN_DEPS=/path make test``).
The tests of the one-line errors run everywhere.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from tests.hw.custom_op.stream_layer_util import (
    assert_equal_ints, finn, finn_reference, one_node_model, random_values, specialized_node,  # noqa: F401
)


@pytest.fixture(scope="module")
def cppsim(finn):
    """Skips (with FINN's dependency folder in the reason) where finn-hlslib, the headers or g++
    is missing."""
    from hw.cppsim import missing_cppsim_tools

    why = missing_cppsim_tools()
    if why:
        pytest.skip(why)


def run_cppsim(model, feed):
    """The base-op ``model`` specialized to HLS, compiled and run in cppsim: outputs in order."""
    from hw.cppsim import compile_cppsim, execute_cppsim

    hls, node = specialized_node(model)
    hls = compile_cppsim(hls)
    out = execute_cppsim(hls, feed)
    return node.op_type, [out[o.name] for o in hls.graph.output]


def check(model, feed, what):
    want = finn_reference(model, feed)
    op_type, got = run_cppsim(model, feed)
    assert op_type.endswith("_hls")
    assert len(got) == len(want)
    for i, (g, w) in enumerate(zip(got, want)):
        assert_equal_ints(g, w, f"{what} {op_type} out{i} (cppsim vs FINN python)")
    return want


# -- the residual and head layers --------------------------------------------------------------

@pytest.mark.cppsim
@pytest.mark.parametrize("dt,ch,pe,n_out", [("INT32", 8, 2, 2), ("UINT2", 6, 3, 3), ("INT7", 4, 4, 2)])
def test_duplicatestreams(cppsim, dt, ch, pe, n_out):
    dt = DataType[dt]
    shape = (3, 4, 4, ch)
    # FINN's InferDuplicateStreamsLayer makes free-running nodes with the hls::vector interface:
    # finn-hlslib's StreamingDup moves one word per call, FINN's cppsim loops it until idle
    model = one_node_model("DuplicateStreams", [("x", shape, dt)], [(f"y{i}", shape, dt) for i in range(n_out)],
                           NumChannels=ch, PE=pe, NumOutputStreams=n_out, inputDataType=dt.name,
                           numInputVectors=list(shape[:-1]), cpp_interface="hls_vector", hls_style="freerunning")
    x = random_values(np.random.default_rng(0), dt, shape)
    want = check(model, {"x": x}, "fork")
    for w in want:  # and FINN's reference is the input itself
        assert_equal_ints(w, x, "FINN python fork vs input")


@pytest.mark.cppsim
@pytest.mark.parametrize("lhs,rhs,pe", [("INT32", "INT32", 2), ("INT8", "UINT4", 4), ("UINT2", "INT3", 1)])
def test_elementwise_add(cppsim, lhs, rhs, pe):
    from qonnx.custom_op.registry import getCustomOp

    lhs, rhs = DataType[lhs], DataType[rhs]
    shape = (2, 3, 3, 8)
    attrs = dict(lhs_dtype=lhs.name, rhs_dtype=rhs.name, out_dtype="INT32", lhs_shape=list(shape),
                 rhs_shape=list(shape), out_shape=list(shape), lhs_style="input", rhs_style="input", PE=pe)
    model = one_node_model("ElementwiseAdd", [("a", shape, lhs), ("b", shape, rhs)], [("y", shape, DataType["INT32"])],
                           **attrs)
    op = getCustomOp(model.graph.node[0])
    out = op._derive_out_dtype(model)  # FINN's own output type for these inputs
    if out.bitwidth() < 32:
        op.set_nodeattr("out_dtype", out.name)
        model.set_tensor_datatype("y", out)
    rng = np.random.default_rng(1)
    a, b = random_values(rng, lhs, shape), random_values(rng, rhs, shape)
    want = check(model, {"a": a, "b": b}, "add")
    if out.bitwidth() < 32:  # within 2**24 the float reference is exact
        assert_equal_ints(want[0], a.astype(np.int64) + b.astype(np.int64), "FINN python add vs numpy")


@pytest.mark.cppsim
@pytest.mark.parametrize("dt,ch,pe,hw", [("UINT2", 8, 2, 4), ("INT4", 6, 3, 3), ("INT32", 4, 1, 2)])
def test_globalaccpool(cppsim, dt, ch, pe, hw):
    from qonnx.custom_op.registry import getCustomOp

    idt = DataType[dt]
    n = 3
    model = one_node_model("GlobalAccPool", [("x", (n, hw, hw, ch), idt)], [("y", (n, 1, 1, ch), DataType["INT32"])],
                           NumChannels=ch, PE=pe, inputDataType=idt.name, numInputVectors=[n, hw, hw])
    model.set_tensor_datatype("y", getCustomOp(model.graph.node[0]).get_output_datatype())
    x = random_values(np.random.default_rng(2), idt, (n, hw, hw, ch))
    x[1] = max(int(idt.min()), -(2**20))  # constant extremes: sums at both ends of the range
    x[2] = min(int(idt.max()), 2**20)
    want = check(model, {"x": x}, "pool")
    assert_equal_ints(want[0].reshape(n, ch), x.astype(np.int64).sum(axis=(1, 2)), "FINN python pool vs numpy")


@pytest.mark.cppsim
@pytest.mark.parametrize("dt,labels,pe,k", [("INT32", 10, 2, 1), ("UINT4", 12, 3, 3), ("INT8", 7, 7, 2)])
def test_labelselect(cppsim, dt, labels, pe, k):
    from qonnx.custom_op.registry import getCustomOp

    idt = DataType[dt]
    vectors = 64
    model = one_node_model("LabelSelect", [("x", (vectors, labels), idt)], [("y", (vectors, k), DataType["UINT8"])],
                           Labels=labels, PE=pe, K=k, inputDataType=idt.name, numInputVectors=[vectors])
    model.set_tensor_datatype("y", getCustomOp(model.graph.node[0]).get_output_datatype())
    x = random_values(np.random.default_rng(3), idt, (vectors, labels))
    x[0] = x[0, 0]  # all labels tied: the lower label first
    check(model, {"x": x}, "top-k")


# -- the convolution / dense layers -------------------------------------------------------------

@pytest.mark.cppsim
@pytest.mark.parametrize("mw,mh,pe,simd,idt,out", [
    (64, 16, 4, 16, "UINT2", "UINT2"),   # the WRN's layers: 2-bit in, thresholds to 2-bit out
    (27, 8, 2, 9, "UINT8", "INT32"),     # first layer: 8-bit pixels, raw accumulator
    (32, 6, 6, 32, "INT4", "INT4"),      # signed in and out, fully unfolded
])
def test_mvau_binary_weights(cppsim, mw, mh, pe, simd, idt, out):
    from tests.hw.custom_op.test_mvau_bipolar_rtl import mvau_model

    model, x, _ = mvau_model(mw, mh, pe, simd, idt, out, vec_shape=(2, 5, 5), seed=4)
    check(model, {"inp": x}, "mvau")


@pytest.mark.cppsim
@pytest.mark.parametrize("ch,pe,idt,odt,act", [(8, 2, "INT16", "UINT2", 0), (6, 3, "INT8", "INT4", -8),
                                               (4, 4, "UINT8", "BIPOLAR", 0)])
def test_thresholding(cppsim, ch, pe, idt, odt, act):
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    idt_, odt_ = DataType[idt], DataType[odt]
    steps = 1 if odt == "BIPOLAR" else 2 ** odt_.bitwidth() - 1
    shape = (2, 4, 4, ch)
    rng = np.random.default_rng(5)
    x = random_values(rng, idt_, shape)
    lo, hi = max(int(idt_.min()), -(2**20)), min(int(idt_.max()), 2**20)
    thr = np.sort(rng.integers(lo, hi + 1, size=(ch, steps)), axis=1).astype(np.float32)
    node = helper.make_node("Thresholding", ["x", "thresh"], ["y"], domain="finn.custom_op.fpgadataflow",
                            backend="fpgadataflow", name="Thresholding_0", NumChannels=ch, PE=pe, numSteps=steps,
                            inputDataType=idt, weightDataType=idt, outputDataType=odt, ActVal=act,
                            numInputVectors=list(shape[:-1]))
    graph = helper.make_graph([node], "thr", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shape))])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="wrn1bit-test"))
    model.set_tensor_datatype("x", idt_)
    model.set_tensor_datatype("y", odt_)
    model.set_initializer("thresh", thr)
    model.set_tensor_datatype("thresh", idt_)
    want = check(model, {"x": x}, "thresholds")
    # and FINN's reference is the count of thresholds passed (+ ActVal; 0/1 -> -1/+1 for BIPOLAR)
    counts = (x.reshape(-1, ch)[:, :, None] >= thr[None]).sum(axis=2) + act
    if odt == "BIPOLAR":
        counts = 2 * counts - 1
    assert_equal_ints(want[0].reshape(-1, ch), counts, "FINN python thresholds vs numpy")


# -- one-line errors (run everywhere) -----------------------------------------------------------

@pytest.fixture
def finn_deps_at(finn, monkeypatch):
    """Point FINN's settings at another FINN_DEPS for one test, then restore them."""
    from finn.util import settings

    saved = settings._SETTINGS
    keep = {k: os.environ.get(k) for k in ("FINN_DEPS", "FINN_DEPS_DEFINITIONS", "FINN_BUILD_DIR",
                                            "NUM_DEFAULT_WORKERS")}

    def point(path):
        os.environ["FINN_DEPS"] = str(path)
        settings._SETTINGS = None
        settings.initialize_dummy_settings()

    yield point
    settings._SETTINGS = saved
    for k, v in keep.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def one_hls_node_model():
    dt = DataType["UINT4"]
    model = one_node_model("DuplicateStreams", [("x", (4, 8), dt)], [("y0", (4, 8), dt), ("y1", (4, 8), dt)],
                           NumChannels=8, PE=2, NumOutputStreams=2, inputDataType=dt.name, numInputVectors=[4],
                           cpp_interface="hls_vector", hls_style="freerunning")
    return specialized_node(model)[0]


def test_missing_finn_hlslib_is_one_line(finn_deps_at, tmp_path):
    from hw.cppsim import CppSimUnavailable, compile_cppsim
    from train.errors import UserError

    empty = tmp_path / "deps"
    empty.mkdir()
    finn_deps_at(empty)
    with pytest.raises(CppSimUnavailable) as e:
        compile_cppsim(one_hls_node_model())
    msg = str(e.value)
    assert isinstance(e.value, UserError)
    assert "\n" not in msg
    assert "finn-hlslib" in msg and str(empty / "finn-hlslib") in msg and "FINN_DEPS" in msg


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
