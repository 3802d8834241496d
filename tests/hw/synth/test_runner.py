"""hw.synth.runner: yosys synth_xilinx counts against expectations fixed by the hardware, not by yosys,
and the errors of a missing yosys or a rejected design.
"""

from __future__ import annotations

import pytest

from hw.synth import runner
from hw.synth.errors import SynthError, YosysMissing
from hw.synth.runner import first_error_line, synthesize
from tests.hw.synth.designs import ARITH, REGISTER, SHIFT, needs_yosys, rom_sources, write


def test_first_error_line_finds_yosys_and_slang_errors():
    log = "1. Executing SLANG frontend.\nmodule error_counter ok\nbad.sv:2:5: error: expected ';'\nERROR: x\n"
    assert first_error_line(log) == "bad.sv:2:5: error: expected ';'"
    assert first_error_line("ok\n", "foo.v:3: ERROR: syntax error, unexpected ';'\n") == \
        "foo.v:3: ERROR: syntax error, unexpected ';'"
    assert first_error_line("Build failed: 1 error, 0 warnings\n") is None


def test_yowasp_cache_goes_to_the_repos_build_folder(monkeypatch):
    monkeypatch.delenv("YOWASP_CACHE_DIR", raising=False)
    assert runner._env()["YOWASP_CACHE_DIR"] == str(runner.REPO / "build" / "yowasp")


def test_missing_yosys_is_one_clear_error(tmp_path):
    with pytest.raises(YosysMissing, match="yosys not found: '/nonexistent/yosys'"):
        synthesize("reg_n", [write(tmp_path / "r.v", REGISTER.replace("{n}", "4"))], yosys="/nonexistent/yosys")


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
