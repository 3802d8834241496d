"""Proof that the netlist check catches what RTL simulation cannot: small modules written for the
test, each with a construct that Verilator and yosys read differently. Each passes RTL simulation
against its reference (what the module was meant to compute, which is what Verilator simulates) and
fails the netlist check, which names the first differing output.

- ``x_default``: a ``case`` whose default assigns ``'x``. Verilator (``--x-assign fast``) makes the
  x a 0; yosys takes it as a don't-care and merges it with another branch (here: sel 3 gives 8'h0f,
  the value of sel 2). The RTL passes with 0, the hardware yosys made gives 0x0f.
- ``out_of_range``: a read of a 6-word array at address 6 or 7. The LRM says x; Verilator returns 0,
  yosys decodes only what the 6 words need, so the netlist returns words 4 and 5.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.sim.verilator import REPO, Stream, VerilatedDesign
from tests.hw.synth.designs import needs_verilator, needs_yosys

pytestmark = [needs_yosys, needs_verilator]

FRAME = """
module {name} (
    input ap_clk, input ap_rst_n,
    input [7:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
    output [7:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY
);
{logic}
    // one output beat per input beat, registered, with back-pressure
    reg ovld = 1'b0;
    reg [7:0] q;
    assign in0_V_TREADY = !ovld || out0_V_TREADY;
    assign out0_V_TVALID = ovld;
    assign out0_V_TDATA = q;
    wire en = in0_V_TVALID && in0_V_TREADY;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) ovld <= 1'b0;
        else if (en) ovld <= 1'b1;
        else if (out0_V_TREADY) ovld <= 1'b0;
        if (en) q <= f;
    end
endmodule
"""

CONSTRUCTS = {
    # (logic computing f from the input beat, the reference: what the RTL means, as Verilator runs it)
    "x_default": ("""
    reg [7:0] f;
    always @* begin
        case (in0_V_TDATA[1:0])
            2'd0: f = 8'h5a;
            2'd1: f = 8'hc3;
            2'd2: f = 8'h0f;
            default: f = 8'bx;   // "never happens": Verilator 0, yosys a don't-care
        endcase
    end
""", lambda v: [0x5A, 0xC3, 0x0F, 0x00][v & 3]),
    "out_of_range": ("""
    reg [7:0] words [0:5];
    initial begin
        words[0] = 8'h11; words[1] = 8'h22; words[2] = 8'h33;
        words[3] = 8'h44; words[4] = 8'h55; words[5] = 8'h66;
    end
    wire [7:0] f = words[in0_V_TDATA[2:0]];   // address 6, 7: x by the LRM; Verilator reads 0
""", lambda v: [0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0, 0][v & 7]),
}


def run_both(name: str):
    from hw.sim.netlist import first_difference, netlist_design
    from hw.synth.runner import synthesize

    logic, meant = CONSTRUCTS[name]
    work = REPO / "build" / "netlist-tests" / f"catches-{name}"
    (work / "src").mkdir(parents=True, exist_ok=True)
    src = work / "src" / f"{name}.sv"
    src.write_text(FRAME.format(name=name, logic=logic))
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=200)
    ports = ([Stream("in0_V", 8)], [Stream("out0_V", 8)])
    run = dict(gap_prob=0.3, stall_prob=0.3, seed=1)
    feed, beats = {"in0_V": x.astype(np.uint32)[:, None]}, {"out0_V": len(x)}
    want = [np.array([meant(int(v)) for v in x])]
    rtl = VerilatedDesign(name, [src], *ports).run(feed, beats, **run)
    synth = synthesize(name, [src], workdir=work)
    net = netlist_design(name, synth.netlist, *ports).run(feed, beats, **run)
    rtl_out, net_out = [rtl.outputs["out0_V"][:, 0].astype(np.int64)], [net.outputs["out0_V"][:, 0].astype(np.int64)]
    return (first_difference(want, rtl_out, "reference", "RTL", ["out0_V"]),
            first_difference(rtl_out, net_out, "RTL", "netlist", ["out0_V"]), x, rtl_out[0], net_out[0])


def _first_index(diff: str) -> int:
    return int(diff.split("first at index (")[1].split(",")[0])


def test_an_x_default_passes_rtl_simulation_and_fails_the_netlist_check():
    rtl_vs_ref, rtl_vs_net, x, rtl, net = run_both("x_default")
    assert rtl_vs_ref is None  # RTL simulation: passes
    assert rtl_vs_net is not None and rtl_vs_net.startswith("out0_V: ")  # the netlist check: fails, named
    k = _first_index(rtl_vs_net)
    assert k == int(np.argmax((x & 3) == 3))  # the first beat that takes the default branch
    assert (rtl[k], net[k]) == (0x00, 0x0F), (rtl[k], net[k])  # both behaviours
    assert "RTL 0 vs netlist 15" in rtl_vs_net
    same = (x & 3) != 3
    assert np.array_equal(rtl[same], net[same])  # everywhere else the netlist is the RTL


@pytest.mark.slow
def test_an_out_of_range_read_passes_rtl_simulation_and_fails_the_netlist_check():
    rtl_vs_ref, rtl_vs_net, x, rtl, net = run_both("out_of_range")
    assert rtl_vs_ref is None
    assert rtl_vs_net is not None
    k = _first_index(rtl_vs_net)
    assert k == int(np.argmax((x & 7) >= 6))
    assert rtl[k] == 0 and net[k] == {6: 0x55, 7: 0x66}[int(x[k]) & 7]
