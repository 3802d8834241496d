"""hw.synth.accelerator and the build report's synthesis section, on small graphs of finn-rtllib's
thresholding:

- a two-layer graph plus the FIFO between them: per-layer rows sum to the total, the FIFO's
  flip-flops equal a hand count of stream_fifo's registers, the section renders in report.md;
- FIFOs deeper than 256 beats go to block RAM;
- a missing yosys gives the one "not run: yosys not found" line instead of the section;
- a layer yosys rejects is listed as not synthesized, not summed.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from common.boards import load_board
from tests.hw.synth.designs import needs_yosys, threshold_chain


def stream_fifo_ffs(depth: int, width: int) -> int:
    """stream_fifo's registers, counted from its source: the output beat (width + valid), the two
    pointers into depth-1 entries, the stored-beat counter; count/maxcount are left open and go."""
    aw = max(1, math.ceil(math.log2(depth - 1))) if depth - 1 > 1 else 1
    return width + 1 + 2 * aw + math.ceil(math.log2(depth + 1))


@needs_yosys
def test_section_rows_sum_to_total_and_fifo_ffs_are_hand_counted(finn, tmp_path):
    from flows.report import render_markdown
    from hw.synth.accelerator import FIFO_KIND, fifo_links, synthesis_section
    from hw.synth.report import REPORT_KINDS

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
@pytest.mark.parametrize("depth, width, bram36", [
    pytest.param(256, 8, 0.5, marks=pytest.mark.slow), (257, 8, 0.5), pytest.param(788, 72, 2, marks=pytest.mark.slow),
    (238, 144, 2), (75, 144, 2), (37, 144, 0), pytest.param(61, 16, 0, marks=pytest.mark.slow),
    pytest.param(3, 168, 0, marks=pytest.mark.slow)])
def test_fifos_go_to_block_ram_when_deep_or_costly_in_luts(tmp_path, depth, width, bram36):
    from hw.stitch import BRAM_FIFO_LUTS, fifo_bram36, fifo_distributed_luts, fifo_lutram_luts
    from hw.synth.accelerator import fifo_top
    from hw.synth.runner import synthesize

    top, files = fifo_top(tmp_path, depth, width)
    r = synthesize(top, files, workdir=tmp_path / top)
    # depth - 1 stored beats: 257 x 8 bits fit one RAMB18; 787 x 72 bits need two RAMB36
    # (36 bits wide x 1,024 deep each). Up to 256 beats the storage stays in LUTs unless block
    # RAM saves at least 100 LUTs per BRAM36: 74 x 144 bits take 472 LUT in LUTs (288 of them
    # LUT RAM, 144 the bank multiplexer), 45 in 2 BRAM36; 36 x 144 bits take 232 in LUTs
    assert r.BRAM36 == bram36
    assert (r.LUTRAM == 0) == (bram36 > 0)
    # the estimates the choice is made on are what yosys maps
    assert (r.BRAM36 == fifo_bram36(depth, width)) if bram36 else (r.LUTRAM == fifo_lutram_luts(depth, width))
    if bram36:  # pointers and counts only (28-58 LUT in yosys, deeper FIFOs having wider counts)
        assert r.LUT <= BRAM_FIFO_LUTS + 15
    else:
        assert abs(r.LUT - fifo_distributed_luts(depth, width)) <= 0.15 * r.LUT + 8
    # in block RAM the output beat's data bits move into the RAM's own output register
    assert r.FF == stream_fifo_ffs(depth, width) - (width if bram36 else 0)


def test_missing_yosys_gives_one_clear_line(finn, tmp_path):
    from flows.report import render_markdown
    from hw.synth.accelerator import synthesis_section

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
    from hw.synth import staging
    from hw.synth.accelerator import synthesize_accelerator

    monkeypatch.setattr(staging, "SOURCE_FIXES",
                        tuple(f for f in staging.SOURCE_FIXES if f.name != "thresholding-scope-select"))
    model, _ = threshold_chain(np.random.default_rng(0), 1, 4, 2, 3)
    report = synthesize_accelerator(model, load_board("pynq-z2"), tmp_path)
    assert report.layers == [] and report.totals["LUT"] == 0
    (name, why), = report.failed
    assert name == "Thresholding_rtl_0" and "unsynthesizable feature" in why
    assert report.verdict().endswith("(incomplete: 1 layer not synthesized by yosys)")
    assert "**not synthesized by yosys**" in report.markdown()


def test_layers_differing_only_in_their_names_are_one_module(tmp_path):
    """FINN names each generated module and file after its node: two layers with equal
    parameters and data are one module (one yosys run); a different parameter or data file is not."""
    from hw.synth.accelerator import same_modules

    def layer(name: str, depth: int, data: str):
        folder = tmp_path / name
        folder.mkdir()
        v = folder / f"{name}.v"
        v.write_text(f"module {name} #(parameter D = {depth}) (input clk);\n  // thresholds in {name}_thr.dat\nendmodule\n")
        dat = folder / f"{name}_thr.dat"
        dat.write_text(data)
        return name, name, [v, dat]

    layers = [layer("FMPadding_rtl_0", 4, "00\n"), layer("FMPadding_rtl_1", 4, "00\n"),
              layer("FMPadding_rtl_2", 8, "00\n"), layer("FMPadding_rtl_3", 4, "01\n"),
              layer("FMPadding_rtl_4", 4, "00\n")]
    assert same_modules(layers) == {"FMPadding_rtl_1": "FMPadding_rtl_0", "FMPadding_rtl_4": "FMPadding_rtl_0"}
