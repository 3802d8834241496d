"""Resource estimates behind the folding search (flows/folding.py), on single hand-built layers."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

CHANNELS, STEPS = 192, 255
PART = "xc7z020clg400-1"


@pytest.fixture(scope="module", autouse=True)
def finn(tmp_path_factory):
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn"))


def thresholding_rtl(channels: int, pe: int, threshold_rows: int):
    """A Thresholding_rtl of an 8-bit output (255 thresholds per set) on INT13 inputs."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node("Thresholding_rtl", ["x", "t"], ["y"], domain="finn.custom_op.fpgadataflow.rtl",
                            backend="fpgadataflow", NumChannels=channels, PE=pe, numSteps=STEPS,
                            inputDataType="INT13", weightDataType="INT14", outputDataType="INT8", ActVal=-128,
                            numInputVectors=[1, 6, 6], name="Thresholding_rtl_0")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 6, channels])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 6, channels])])
    model = ModelWrapper(qonnx_make_model(g))
    thr = np.sort(np.random.default_rng(0).integers(-4000, 4000, (threshold_rows, STEPS)), axis=1)
    model.set_initializer("t", thr.astype(np.float32))
    model.set_tensor_datatype("t", DataType["INT14"])
    return model, getCustomOp(model.graph.node[0])


@pytest.mark.parametrize("pe", [1, 4])
def test_shared_thresholds_are_estimated_as_one_set_per_pe(pe):
    """finn's Thresholding_rtl builds thresholds of shape (1, steps) with C = PE channels (its
    generated wrapper's parameter C): the estimate is that of a layer with PE channels, not
    FINN's, which stores a set for every channel."""
    from flows.folding import layer_estimates

    shared, op = thresholding_rtl(CHANNELS, pe, 1)
    finn_lut = op.node_res_estimation("xc7z020clg400-1")["LUT"]
    (est,) = layer_estimates(shared, "xc7z020clg400-1")
    (as_built,) = layer_estimates(thresholding_rtl(pe, pe, pe)[0], "xc7z020clg400-1")
    assert (est.LUT, est.BRAM36) == (as_built.LUT, as_built.BRAM36)
    assert est.LUT * 10 < finn_lut  # FINN's count holds 192 / PE times as many thresholds
    assert op.get_nodeattr("NumChannels") == CHANNELS  # the node is left as it was
    assert est.cycles == op.get_exp_cycles()  # cycles still for all 192 channels


def test_per_channel_thresholds_keep_finns_estimate():
    from flows.folding import layer_estimates

    model, op = thresholding_rtl(CHANNELS, 4, CHANNELS)
    (est,) = layer_estimates(model, "xc7z020clg400-1")
    res = op.node_res_estimation("xc7z020clg400-1")
    assert (est.LUT, est.BRAM36) == (res.get("LUT", 0), res.get("BRAM_18K", 0) / 2)


@pytest.mark.parametrize("rows,pe,model,bram36",
                         [(1, 4, "table", 8.0), (1, 1, "table", 2.0), (CHANNELS, 4, "finn", 0.0)])
def test_thresholdings_that_become_tables_are_estimated_by_their_tables(rows, pe, model, bram36):
    """In this project's RTL flow a Thresholding_rtl that ThresholdTable_rtl takes over costs its
    tables: INT13 in, 8 bits out, 8,192 x 8 bits per lane = 2 BRAM36 (8K x 2 halves), one table
    per lane when the thresholds are shared; per-channel thresholds on 48 folds would be 96
    BRAM36 a lane, so FINN's layer stays and so does its estimate."""
    from flows.folding import layer_estimates

    m, op = thresholding_rtl(CHANNELS, pe, rows)
    est = layer_estimates(m, "xc7z020clg400-1", project_rtl=True)[0]  # then the FIFOs row
    assert est.model == model and est.BRAM36 == bram36
    if model == "table":
        assert est.LUT < 60 < est.finn_LUT
    assert est.cycles == op.get_exp_cycles()


def mvau_hls(mw: int, mh: int, pixels: int = 4, out: str = "UINT2", layers: list[tuple[int, int, int, int]] = ()):
    """MVAU_hls of bipolar weights on UINT2 inputs, with thresholds (out UINT2) or without (out
    INT32), over ``pixels`` input vectors: one (mw x mh, PE = SIMD = 1), or with ``layers`` one
    independent node per (mw, mh, pe, simd), named MVAU_hls_<i>."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    act = out != "INT32"
    specs = list(layers) or [(mw, mh, 1, 1)]
    rng = np.random.default_rng(0)
    nodes, ins, outs, inits = [], [], [], {}
    for i, (w_, h_, pe, simd) in enumerate(specs):
        nodes.append(helper.make_node(
            "MVAU_hls", [f"x{i}", f"w{i}", f"t{i}"] if act else [f"x{i}", f"w{i}"], [f"y{i}"],
            domain="finn.custom_op.fpgadataflow.hls", backend="fpgadataflow", MW=w_, MH=h_, PE=pe, SIMD=simd,
            inputDataType="UINT2", weightDataType="BIPOLAR", outputDataType=out, ActVal=0,
            noActivation=int(not act), numInputVectors=[1, pixels], mem_mode="internal_decoupled",
            ram_style="auto", name=f"MVAU_hls_{i}"))
        ins.append(helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, [1, pixels, w_]))
        outs.append(helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, [1, pixels, h_]))
        inits[f"w{i}"] = rng.choice([-1.0, 1.0], (w_, h_)).astype(np.float32)
        if act:
            inits[f"t{i}"] = np.sort(rng.integers(-w_, w_, (h_, 3)), axis=1).astype(np.float32)
    model = ModelWrapper(qonnx_make_model(helper.make_graph(nodes, "g", ins, outs)))
    for name, value in inits.items():
        model.set_initializer(name, value)
        model.set_tensor_datatype(name, DataType["BIPOLAR" if name[0] == "w" else "INT32"])
    for i in range(len(specs)):
        model.set_tensor_datatype(f"x{i}", DataType["UINT2"])
    return model


def test_rtl_mvaus_are_the_bipolar_ones_and_only_with_the_rtl_backend():
    from flows.folding import rtl_mvaus

    model = mvau_hls(64, 16)
    assert rtl_mvaus(model, "rtl") == {"MVAU_hls_0"}
    assert rtl_mvaus(model, "hls") == frozenset()
    model.set_initializer("w0", np.full((64, 16), 0.5, dtype=np.float32))  # not +-1: FINN's HLS MVAU stays
    assert rtl_mvaus(model, "rtl") == frozenset()


def test_rtl_mvaus_unfold_past_the_weight_streams_width():
    """FINN stops PE where a weight stream would pass ap_int's width (8191 bits); a ROM inside
    the layer has no stream: target 1 unfolds it completely, and mem_mode is restored."""
    from qonnx.custom_op.registry import getCustomOp

    from flows.folding import set_folding

    mw, mh = 4608, 64
    model = mvau_hls(mw, mh)
    streamed = getCustomOp(set_folding(model, 1, mw).graph.node[0])
    assert streamed.get_nodeattr("SIMD") == mw and streamed.get_nodeattr("PE") * mw <= 8191
    op = getCustomOp(set_folding(model, 1, mw, frozenset({"MVAU_hls_0"})).graph.node[0])
    assert (op.get_nodeattr("SIMD"), op.get_nodeattr("PE")) == (mw, mh)
    assert op.get_nodeattr("mem_mode") == "internal_decoupled"
    assert op.get_exp_cycles() == 4  # one cycle per input vector


def test_simd_caps_searched_double_up_to_the_widest_layer_only_for_rtl_mvaus():
    from flows.folding import wwidth_candidates

    model = mvau_hls(0, 0, layers=[(432, 48, 1, 1), (9, 48, 1, 1)])
    both = frozenset({"MVAU_hls_0", "MVAU_hls_1"})
    assert wwidth_candidates(model, 36, both) == [36, 72, 144, 288, 576]
    assert wwidth_candidates(model, 36, frozenset({"MVAU_hls_0"})) == [36]  # one stays FINN's
    assert wwidth_candidates(model, 36, frozenset()) == [36]


def test_weight_memories_go_to_luts_cheapest_first_when_block_ram_runs_out():
    """Three layers, all in block RAM when the budget allows; with less, the layer whose LUT copy
    costs the fewest LUT per BRAM36 freed (the shallowest ROM) moves first."""
    from qonnx.custom_op.registry import getCustomOp

    from flows.folding import assign_weight_memories, block_bram36
    from hw.synth.cost_model import shape_of

    def design():  # ROM depths (MW/SIMD * MH/PE) 512, 128 and 4, each 128 bits wide
        return mvau_hls(0, 0, layers=[(512, 128, 1, 128), (512, 32, 1, 128), (128, 4, 4, 32)])

    m = design()
    names = frozenset(n.name for n in m.graph.node)
    depths = {n.name: shape_of(m, n).depth for n in m.graph.node}
    assert sorted(depths.values()) == [4, 128, 512]
    need = {n.name: block_bram36(getCustomOp(n), PART) for n in m.graph.node}
    assert all(v > 0 for v in need.values())

    def styles(budget):
        model = design()
        assign_weight_memories(model, names, budget, PART)
        return {n.name: getCustomOp(n).get_nodeattr("ram_style") for n in model.graph.node}

    assert set(styles(sum(need.values())).values()) == {"block"}
    assert set(styles(0).values()) == {"distributed"}
    shallowest = min(depths, key=depths.get)
    one_less = styles(sum(need.values()) - 0.5)
    assert [k for k, v in one_less.items() if v == "distributed"] == [shallowest]


def threshold_then_padding(pe: int, simd: int, channels: int = 48):
    """Thresholding_rtl (PE pe, UINT2 out) feeding FMPadding_rtl (SIMD simd) on 6x6 x channels."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    thr = helper.make_node("Thresholding_rtl", ["x", "t"], ["a"], domain="finn.custom_op.fpgadataflow.rtl",
                           backend="fpgadataflow", NumChannels=channels, PE=pe, numSteps=3, inputDataType="INT8",
                           weightDataType="INT8", outputDataType="UINT2", ActVal=0, numInputVectors=[1, 6, 6],
                           name="Thresholding_rtl_0")
    pad = helper.make_node("FMPadding_rtl", ["a"], ["y"], domain="finn.custom_op.fpgadataflow.rtl",
                           backend="fpgadataflow", ImgDim=[6, 6], Padding=[1, 1, 1, 1], NumChannels=channels,
                           SIMD=simd, inputDataType="UINT2", numInputVectors=1, name="FMPadding_rtl_0")
    g = helper.make_graph([thr, pad], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 6, channels])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 8, channels])])
    model = ModelWrapper(qonnx_make_model(g))
    model.set_initializer("t", np.sort(np.random.default_rng(0).integers(-50, 50, (channels, 3)), axis=1)
                          .astype(np.float32))
    model.set_tensor_datatype("t", DataType["INT8"])
    model.set_tensor_datatype("x", DataType["INT8"])
    model.set_tensor_datatype("a", DataType["UINT2"])
    return model


@pytest.mark.parametrize("pe,simd", [(2, 3), (3, 2), (4, 6), (16, 3)])
def test_stream_widths_that_need_a_common_multiple_are_matched_by_widening_the_cheap_side(pe, simd):
    """A 2-PE threshold (4 bits) into a 3-SIMD padding (6 bits) needs a width converter through
    12 bits, which runs at 4 cycles per 3 beats: the padding (or the threshold) is widened until
    one width divides the other, each parallelism still dividing the 48 channels."""
    from qonnx.custom_op.registry import getCustomOp

    from flows.folding import match_stream_widths

    model = threshold_then_padding(pe, simd)
    thr, pad = (getCustomOp(n) for n in model.graph.node)
    assert thr.get_outstream_width() % pad.get_instream_width() and pad.get_instream_width() % thr.get_outstream_width()
    widened = match_stream_widths(model)
    a, b = thr.get_outstream_width(), pad.get_instream_width()
    assert a % b == 0 or b % a == 0
    assert widened and 48 % thr.get_nodeattr("PE") == 0 and 48 % pad.get_nodeattr("SIMD") == 0
    assert thr.get_nodeattr("PE") >= pe and pad.get_nodeattr("SIMD") >= simd  # only ever faster


def test_stream_widths_already_multiples_are_left_alone():
    from qonnx.custom_op.registry import getCustomOp

    from flows.folding import match_stream_widths

    model = threshold_then_padding(2, 4)
    assert match_stream_widths(model) == []
    assert [getCustomOp(n).get_nodeattr(a) for n, a in zip(model.graph.node, ("PE", "SIMD"))] == [2, 4]
