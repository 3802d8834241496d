"""One-node cases of every RTL layer type the flow generates, for the netlist tests: each builds the
layer with FINN's base op, takes FINN's python execution of it as the reference, and returns the
RTL op with its HDL generated and the input arrays.

The model builders are the per-layer RTL tests' own (tests/hw/custom_op), so the netlist runs
exactly the kind of layer those tests check; finn-rtllib's layers (Thresholding_rtl,
ConvolutionInputGenerator_rtl, FMPadding_rtl) are specialized by FINN's SpecializeLayers, as the
flow does. ``fifo_case`` is the stream FIFO hw.stitch puts between layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

PART = "xc7z020clg400-1"


@dataclass
class Case:
    op: object
    inputs: list[np.ndarray]
    reference: list[np.ndarray]
    params: dict = field(default_factory=dict)


def _dt(name):
    from qonnx.core.datatype import DataType

    return DataType[name]


def mvau_case(mw=32, mh=16, pe=4, simd=8, idt="UINT2", out="UINT2", ram_style="block", vectors=64, seed=0,
              xnor=False):
    from tests.hw.custom_op.test_mvau_bipolar_rtl import as_rtl, mvau_model

    model, x, ref = mvau_model(mw, mh, pe, simd, idt, out, ram_style, vec_shape=(vectors,), seed=seed, xnor=xnor)
    _, op = as_rtl(model)
    return Case(op, [x], [ref])


def maxpool_case(dt="INT4", ch=12, pe=4, k=3, ohw=(2, 3), images=4, seed=0):
    """MaxPool_rtl on the window stream a depthwise sliding window sends ([fold][kernel][PE])."""
    import hw.custom_op.maxpool_rtl as maxpool
    from tests.hw.custom_op.stream_layer_util import as_rtl, random_values
    from tests.hw.custom_op.test_maxpool_rtl import pool_model

    idt = _dt(dt)
    windows = random_values(np.random.default_rng(seed), idt, (images, *ohw, k * k, ch))
    model = pool_model(idt, ch, pe, k, ohw, images)
    stream = maxpool.stream_major(windows.reshape(images, *ohw, k * k * ch), k * k, ch, pe)
    _, op = as_rtl(model, "MaxPool_rtl")
    return Case(op, [stream], [windows.max(axis=-2)])  # numpy's max over each window


def threshold_table_case(ch=12, pe=2, idt="INT9", odt="INT8", act_val=-128, steps=255, shared=False,
                         vecs=(2, 4, 4), seed=1):
    from tests.hw.custom_op.stream_layer_util import as_rtl, finn_reference, random_values
    from tests.hw.custom_op.test_thresholdtable_rtl import threshold_model

    idt, odt = _dt(idt), _dt(odt)
    model = threshold_model(ch, pe, idt, odt, act_val, steps, shared, vecs)
    x = random_values(np.random.default_rng(seed), idt, (*vecs, ch))
    ref = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "ThresholdTable_rtl")
    return Case(op, [x], ref)


def fork_case(dt="INT32", ch=8, pe=2, n_out=2, vecs=(4, 3, 3), seed=0):
    from tests.hw.custom_op.stream_layer_util import as_rtl, finn_reference, random_values
    from tests.hw.custom_op.test_duplicatestreams_rtl import fork_model

    dt = _dt(dt)
    model = fork_model(dt, ch, pe, n_out, vecs)
    x = random_values(np.random.default_rng(seed), dt, tuple(vecs) + (ch,))
    ref = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "DuplicateStreams_rtl")
    return Case(op, [x], ref)


def add_case(lhs="INT8", rhs="INT8", out=None, shape=(4, 3, 3, 8), pe=2, seed=0):
    from tests.hw.custom_op.stream_layer_util import as_rtl, finn_reference, random_values
    from tests.hw.custom_op.test_elementwiseaddstreams_rtl import add_model, derived_out

    lhs_dt, rhs_dt = _dt(lhs), _dt(rhs)
    model = add_model(lhs_dt, rhs_dt, _dt("INT32"), shape, pe)
    model = add_model(lhs_dt, rhs_dt, _dt(out) if out else derived_out(model), shape, pe)
    rng = np.random.default_rng(seed)
    a, b = random_values(rng, lhs_dt, shape), random_values(rng, rhs_dt, shape)
    a.reshape(-1)[:2], b.reshape(-1)[:2] = [lhs_dt.min(), lhs_dt.max()], [rhs_dt.min(), rhs_dt.max()]
    ref = finn_reference(model, {"a": a, "b": b})
    _, op = as_rtl(model, "ElementwiseAddStreams_rtl")
    return Case(op, [a, b], ref)


def pool_case(dt="INT8", ch=8, pe=2, vecs=(4, 3, 3), seed=0):
    from tests.hw.custom_op.stream_layer_util import as_rtl, finn_reference, random_values
    from tests.hw.custom_op.test_globalaccpool_rtl import pool_model

    idt = _dt(dt)
    model = pool_model(idt, ch, pe, vecs)
    n, h, w = vecs
    x = random_values(np.random.default_rng(seed), idt, (n, h, w, ch))
    x[0], x[1] = idt.min(), idt.max()
    ref = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "GlobalAccPool_rtl")
    return Case(op, [x], ref)


def select_case(dt="INT8", labels=10, pe=2, k=1, vectors=64, seed=0):
    from tests.hw.custom_op.stream_layer_util import as_rtl, finn_reference, random_values
    from tests.hw.custom_op.test_labelselect_rtl import select_model

    idt = _dt(dt)
    model = select_model(idt, labels, pe, k, vectors)
    x = random_values(np.random.default_rng(seed), idt, (vectors, labels))
    ref = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "LabelSelect_rtl")
    return Case(op, [x], ref)


def converter_case(dt="INT3", shape=(4, 3, 3, 12), in_elems=4, out_elems=6, seed=0):
    from tests.hw.custom_op.stream_layer_util import as_rtl, finn_reference, random_values
    from tests.hw.custom_op.test_streamwidthconverter_rtl import converter_model

    dt = _dt(dt)
    model = converter_model(dt, shape, in_elems, out_elems)
    x = random_values(np.random.default_rng(seed), dt, shape)
    ref = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "StreamWidthConverter_rtl")
    return Case(op, [x], ref)


def _specialized(model, code_dir=None):
    """The model's one node specialized by FINN's SpecializeLayers (an _rtl node, as the flow picks
    it), its HDL generated; returns the op."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers

    from hw.sim.node import ensure_hdl

    model = model.transform(SpecializeLayers(PART))
    node = model.graph.node[0]
    assert node.op_type.endswith("_rtl"), node.op_type
    return ensure_hdl(model, node, PART)


def thresholding_case(ch=8, pe=2, steps=3, idt="INT8", vecs=(2, 4, 4), seed=0):
    """finn-rtllib's Thresholding_rtl (few thresholds: the flow keeps FINN's)."""
    import math

    from tests.hw.custom_op.stream_layer_util import finn_reference, one_node_model, random_values

    idt = _dt(idt)
    odt = _dt(f"UINT{math.ceil(math.log2(steps + 1))}")
    rng = np.random.default_rng(seed)
    thr = np.sort(rng.integers(int(idt.min()), int(idt.max()) + 1, size=(ch, steps)), axis=1).astype(np.float32)
    model = one_node_model("Thresholding", [("x", (*vecs, ch), idt), ("t", thr.shape, idt)],
                           [("y", (*vecs, ch), odt)], NumChannels=ch, PE=pe, numSteps=steps,
                           inputDataType=idt.name, weightDataType=idt.name, outputDataType=odt.name,
                           ActVal=0, numInputVectors=list(vecs), preferred_impl_style="rtl")
    model.set_initializer("t", thr)
    model.graph.input.remove(next(i for i in model.graph.input if i.name == "t"))
    x = random_values(rng, idt, (*vecs, ch))
    ref = finn_reference(model, {"x": x})
    return Case(_specialized(model), [x], ref)


def swg_case(ch=4, simd=2, k=3, ifm=6, stride=1, dt="UINT2", images=1, depthwise=0, seed=0):
    """finn-rtllib's sliding window (ConvolutionInputGenerator_rtl; one image: its shapes have no batch)."""
    from tests.hw.custom_op.stream_layer_util import finn_reference, one_node_model, random_values

    dt = _dt(dt)
    ofm = (ifm - k) // stride + 1
    model = one_node_model("ConvolutionInputGenerator", [("x", (images, ifm, ifm, ch), dt)],
                           [("y", (images, ofm, ofm, k * k * ch), dt)],
                           ConvKernelDim=[k, k], IFMChannels=ch, IFMDim=[ifm, ifm], OFMDim=[ofm, ofm], SIMD=simd,
                           Stride=[stride, stride], Dilation=[1, 1], inputDataType=dt.name, outputDataType=dt.name,
                           depthwise=depthwise, preferred_impl_style="rtl")
    x = random_values(np.random.default_rng(seed), dt, (images, ifm, ifm, ch))
    ref = finn_reference(model, {"x": x})
    return Case(_specialized(model), [x], ref)


def padding_case(ch=4, simd=2, img=5, pad=(1, 1, 1, 1), dt="INT4", images=1, seed=0):
    """finn-rtllib's FMPadding_rtl (one image, as the sliding window)."""
    from tests.hw.custom_op.stream_layer_util import finn_reference, one_node_model, random_values

    dt = _dt(dt)
    out = (images, img + pad[0] + pad[2], img + pad[1] + pad[3], ch)
    model = one_node_model("FMPadding", [("x", (images, img, img, ch), dt)], [("y", out, dt)],
                           ImgDim=[img, img], Padding=list(pad), NumChannels=ch, SIMD=simd,
                           inputDataType=dt.name, numInputVectors=images, preferred_impl_style="rtl")
    x = random_values(np.random.default_rng(seed), dt, (images, img, img, ch))
    ref = finn_reference(model, {"x": x})
    return Case(_specialized(model), [x], ref)


FIFO_WRAPPER = """// {name}: one stream_fifo as hw.stitch instantiates it, with FINN's stream port names, for the
// netlist tests (generated by tests/hw/sim/netlist_cases.py).
module {name} (
    input  wire ap_clk, input wire ap_rst_n,
    input  wire [{w1}:0] in0_V_TDATA, input wire in0_V_TVALID, output wire in0_V_TREADY,
    output wire [{w1}:0] out0_V_TDATA, output wire out0_V_TVALID, input wire out0_V_TREADY
);
    stream_fifo #(.DEPTH({depth}), .DATA_WIDTH({width}), .RAM_STYLE("{style}")) fifo (
        .clk(ap_clk), .rst(!ap_rst_n),
        .idat(in0_V_TDATA), .ivld(in0_V_TVALID), .irdy(in0_V_TREADY),
        .odat(out0_V_TDATA), .ovld(out0_V_TVALID), .ordy(out0_V_TREADY),
        .limit('0), .count(), .maxcount()
    );
endmodule
"""


def fifo_sources(folder: Path, depth: int, width: int) -> tuple[str, list[Path]]:
    """(top, files) of a stream_fifo of ``depth`` beats of ``width`` bits with FINN's port names, in
    the RAM style hw.stitch gives it."""
    from hw.stitch import FIFO_FILE, fifo_ram_style

    name = f"fifo_d{depth}_w{width}"
    folder.mkdir(parents=True, exist_ok=True)
    top = folder / f"{name}.v"
    top.write_text(FIFO_WRAPPER.format(name=name, w1=width - 1, depth=depth, width=width,
                                       style=fifo_ram_style(depth, width)))
    return name, [FIFO_FILE, top]
