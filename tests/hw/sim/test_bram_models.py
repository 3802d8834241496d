"""The block RAM models of hw.sim.primitives, through yosys: small RAMs written for the test, mapped
by ``synth_xilinx`` onto RAMB18E1 / RAMB36E1, run as RTL and as netlist on the same random reads
and writes, both equal to a Python model of the RAM. Without the models the netlist's block RAMs
would be yosys' blackbox declarations (no behaviour): every read would be wrong.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.sim.verilator import REPO, Stream, VerilatedDesign
from tests.hw.synth.designs import needs_verilator, needs_yosys

pytestmark = [needs_yosys, needs_verilator]

# One access per input beat {we, byte enables, address, write data}; the word read at that address
# (old contents: read-first; or, write-first, the word as written) leaves as an output beat.
# A beat is taken only when the output register is free, so the RAM is enabled only then.
RAM = """
module {name} (
    input ap_clk, input ap_rst_n,
    input [{iw}:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
    output [{ow}:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY
);
    localparam W = {w}, A = {a}, NB = {nb};
    (* ram_style = "block" *) reg [W-1:0] mem [0:(1<<A)-1];
    initial for (int k = 0; k < (1<<A); k++) mem[k] = W'(k * 37 + 11);
    wire [W-1:0] wdata = in0_V_TDATA[W-1:0];
    wire [A-1:0] addr = in0_V_TDATA[W+A-1:W];
    wire [NB-1:0] be = in0_V_TDATA[W+A+NB-1:W+A];
    wire we = in0_V_TDATA[W+A+NB];
    reg ovld = 1'b0;
    reg [W-1:0] rdata;
    assign in0_V_TREADY = !ovld || out0_V_TREADY;
    assign out0_V_TVALID = ovld;
    wire en = in0_V_TVALID && in0_V_TREADY;
    always @(posedge ap_clk) begin
        if (!ap_rst_n) ovld <= 1'b0;
        else if (en) ovld <= 1'b1;
        else if (out0_V_TREADY) ovld <= 1'b0;
    end
{body}
    assign out0_V_TDATA = {out};
endmodule
"""

READ_FIRST = """
    always @(posedge ap_clk) if (en) begin
        for (int b = 0; b < NB; b++) if (we && be[b]) mem[addr][b*(W/NB) +: W/NB] <= wdata[b*(W/NB) +: W/NB];
        rdata <= mem[addr];
    end
"""

WRITE_FIRST = """
    always @(posedge ap_clk) if (en) begin
        if (we) begin mem[addr] <= wdata; rdata <= wdata; end
        else rdata <= mem[addr];
    end
"""


def ram_sources(folder, name, w, a, nb, body):
    iw = -(-(w + a + nb + 1) // 8) * 8
    ow = -(-w // 8) * 8
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.sv"
    path.write_text(RAM.format(name=name, iw=iw - 1, ow=ow - 1, w=w, a=a, nb=nb, body=body,
                               out=f"{{{ow - w}'b0, rdata}}" if ow > w else "rdata"))
    return path, iw, ow


def reference(w, a, nb, ops, write_first):
    mem = [(k * 37 + 11) % (1 << w) for k in range(1 << a)]
    lane = w // nb
    out = []
    for we, be, addr, data in ops:
        old = mem[addr]
        if we:
            new = old
            for b in range(nb):
                if write_first or (be >> b) & 1:
                    m = ((1 << lane) - 1) << (b * lane)
                    new = (new & ~m) | (data & m)
            mem[addr] = new
        out.append(mem[addr] if (we and write_first) else old)
    return out


def run_ram(name, w, a, nb, write_first=False, n=3000, seed=0):
    from hw.sim.axis import unpack_words
    from hw.sim.netlist import netlist_design
    from hw.synth.runner import synthesize

    work = REPO / "build" / "netlist-tests" / f"bram-{name}"
    src, iw, ow = ram_sources(work / "src", name, w, a, nb, WRITE_FIRST if write_first else READ_FIRST)
    rng = np.random.default_rng(seed)
    hot = rng.integers(0, 1 << a, size=8)  # a few addresses written and read again and again
    ops = []
    for _ in range(n):
        addr = int(hot[rng.integers(0, 8)]) if rng.random() < 0.5 else int(rng.integers(0, 1 << a))
        ops.append((int(rng.random() < 0.5), int(rng.integers(0, 1 << nb)), addr,
                    int.from_bytes(rng.bytes(8), "little") % (1 << w)))
    beats = np.array([[d | (ad << w) | (be << (w + a)) | (we << (w + a + nb))] for we, be, ad, d in ops],
                     dtype=object)
    words = np.array([[int(v) >> (32 * k) & 0xFFFFFFFF for k in range(-(-iw // 32))] for (v,) in beats],
                     dtype=np.uint32)  # one beat = little-endian 32-bit words, as the testbench moves it
    want = reference(w, a, nb, ops, write_first)
    ports = ([Stream("in0_V", iw)], [Stream("out0_V", ow)])
    run = dict(gap_prob=0.3, stall_prob=0.3, seed=seed + 1)
    rtl = VerilatedDesign(name, [src], *ports).run({"in0_V": words}, {"out0_V": n}, **run)
    synth = synthesize(name, [src], workdir=work)
    net = netlist_design(name, synth.netlist, *ports).run({"in0_V": words}, {"out0_V": n}, **run)
    for what, res in (("RTL", rtl), ("netlist", net)):
        got = unpack_words(res.outputs["out0_V"], 32, -(-ow // 32), False)
        got = [sum(int(v) << (32 * k) for k, v in enumerate(row)) for row in got]
        bad = [i for i in range(n) if got[i] != want[i]]
        assert not bad, f"{what}: {len(bad)} of {n} reads differ, first #{bad[0]}: {got[bad[0]]:x} vs {want[bad[0]]:x}"
    assert np.array_equal(rtl.out_cycles["out0_V"], net.out_cycles["out0_V"])
    return synth


def test_byte_enabled_ram_in_ramb36():
    """36 x 1024 bits, 4 byte lanes of 9 bits (parity bits included), read-first: one RAMB36E1."""
    synth = run_ram("ram_be36", 36, 10, 4)
    assert synth.cells.get("RAMB36E1") == 1, synth.cells


@pytest.mark.slow
@pytest.mark.parametrize("name,w,a,nb,write_first", [
    ("ram_w18", 18, 10, 2, False),   # RAMB18E1, two 9-bit lanes
    ("ram_w2", 2, 11, 1, False),     # 2 x 2048: a narrow port
    ("ram_wf", 16, 9, 1, True),      # write-first
    ("ram_w72", 72, 9, 8, False),    # 72 bits: the SDP width, 8 lanes
])
def test_ram_grid(name, w, a, nb, write_first):
    synth = run_ram(name, w, a, nb, write_first)
    assert synth.BRAM36 > 0, synth.cells
