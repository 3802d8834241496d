"""hw.synth.staging: sources copied flat, refused when missing or clashing, and the SOURCE_FIXES.

Each fix must still find its construct in the installed finn-rtllib, and the rewritten
thresholding.sv that yosys reads must still compute what FINN's thresholding does: simulated in
Verilator against a numpy count of thresholds, N chosen so that the rewritten branch is live
(N = 2, 5) and dead (N = 3).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hw.synth.errors import SynthError
from hw.synth.runner import synthesize
from hw.synth.staging import SOURCE_FIXES, stage_sources
from tests.hw.synth.designs import REGISTER, needs_verilator, needs_yosys, threshold_chain, write


@needs_yosys
def test_missing_source_and_duplicate_names_are_refused(tmp_path):
    with pytest.raises(SynthError, match="source not found"):
        synthesize("x", [tmp_path / "nope.v"], workdir=tmp_path / "w")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    files = [write(tmp_path / d / "m.v", REGISTER.replace("{n}", "2")) for d in "ab"]
    with pytest.raises(SynthError, match="two sources named m.v"):
        synthesize("reg_n", files, workdir=tmp_path / "w")


def test_default_nettype_is_dropped_only_from_the_copy_yosys_reads(tmp_path):
    # finn-rtllib's vpc.sv sets `default_nettype inside its module, which slang refuses
    text = "module m;\n`default_nettype none\n  wire a;\n`default_nettype wire\nendmodule\n"
    src = write(tmp_path / "m.sv", text)
    (tmp_path / "w").mkdir()
    names, fixes = stage_sources([src], tmp_path / "w")
    assert names == ["m.sv"] and fixes == ["default-nettype in m.sv"]
    staged = (tmp_path / "w" / "m.sv").read_text()
    assert "\n`default_nettype" not in staged and staged.count("// `default_nettype") == 2
    assert src.read_text() == text


def test_every_source_fix_still_matches_finn_rtllib(finn):
    """Each fix must find its construct in the installed finn-rtllib: when FINN changes the file,
    this says so, instead of yosys failing again with no location."""
    import finn as finn_pkg

    rtllib = Path(finn_pkg.__file__).parent / "finn-rtllib"
    where = {"thresholding-scope-select": rtllib / "thresholding" / "hdl" / "thresholding.sv",
             "default-nettype": rtllib / "dwc" / "hdl" / "vpc.sv"}
    ours = {"distributed-rom"}  # for this project's generated ROMs: test_a_distributed_rom_is_built_from_luts
    assert set(where) == {f.name for f in SOURCE_FIXES} - ours
    for fix in (f for f in SOURCE_FIXES if f.name not in ours):
        text, n = fix.apply(where[fix.name].name, where[fix.name].read_text())
        assert n >= 1, fix.name
        assert fix.apply(where[fix.name].name, text)[1] == 0, f"{fix.name} must not match its own output"


ROM = """module rom (input clk, input [7:0] addr, output reg [31:0] data);
    {attr}reg [31:0] mem [0:255];
    integer i;
    initial for (i = 0; i < 256; i = i + 1) mem[i] = i * 2654435761;
    always @(posedge clk) data <= mem[addr];
endmodule
"""


@needs_yosys
@pytest.mark.parametrize("style", ["distributed", "block"])
def test_a_distributed_rom_is_built_from_luts(tmp_path, style):
    """rom_style "distributed" (Vivado's LUT ROM, as the MVAU's weight ROM writes it) stopped
    yosys with "no valid mapping found for memory"; staged as "logic" it is LUTs, and "block"
    stays block RAM."""
    src = write(tmp_path / "rom.v", ROM.replace("{attr}", f'(* rom_style = "{style}" *) '))
    r = synthesize("rom", [src], workdir=tmp_path / "w")
    if style == "block":
        assert r.BRAM36 > 0 and not r.fixes
    else:
        assert r.BRAM36 == 0 and r.LUT >= 32 and r.fixes == ["distributed-rom in rom.v"]
    assert f'rom_style = "{style}"' in src.read_text()


@needs_verilator
@pytest.mark.parametrize("n, ch, pe", [(2, 4, 2), (3, 6, 3), (5, 4, 1)])
def test_rewritten_thresholding_computes_the_same(finn, tmp_path, n, ch, pe):
    """The copy yosys reads, simulated: every output = number of thresholds <= input."""
    from qonnx.custom_op.registry import getCustomOp

    from hw.sim.node import node_design, simulate_node
    from hw.sim.verilator import VerilatedDesign
    from hw.synth.accelerator import layer_sources

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
