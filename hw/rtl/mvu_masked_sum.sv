// mvu_masked_sum: pipelined sum of the lanes of one input fold, each lane kept or inverted
// (XNOR = 1) or kept or dropped (XNOR = 0) by its mask bit.
//
// Part of the bipolar-weight matrix-vector unit (mvu_bipolar), which passes one PE's weight bits
// (1 for +1) as the mask and XNOR = 1: a lane whose weight is -1 then counts as ~x, which is
// -x + C (C = 2^IN_W - 1 unsigned, -1 signed), so the sum is the dot product plus C times the
// number of -1 weights, a per-channel constant the unit's generator takes out. With XNOR = 0
// the sum is S = sum of x[i] where the mask bit is set (all ones: the sum of all lanes).
//
// How: the lanes arrive as bit planes (plane k holds bit k of every lane), so a chunk of CHUNK
// lanes sums to  sum_k 2^k * popcount(plane_k op mask)  (for signed lanes the top plane counts
// -2^(IN_W-1)): one gate and one population count per plane and chunk instead of a masked adder
// per lane. That is what yosys maps to LUT compressor trees at about the cost of the per-lane
// adder tree it replaces, and what Verilator evaluates with one machine popcount per word: the
// whole accelerator simulates about twice as fast (bench/results/hw_sim.md). The chunk values
// are registered and summed by an mvu_add_tree, which keeps the longest combinational path at
// one chunk's popcount (CHUNK lanes) or REG_EVERY adders, whatever the number of lanes.
//
// Every value is exact: a chunk value fits VW bits, the tree widens by a bit per level.
// Latency: 1 + ceil($clog2(NC) / REG_EVERY) cycles; the TAG_W-bit sideband rides along.

module mvu_masked_sum #(
    parameter int N = 8,              // lanes
    parameter int IN_W = 4,           // bits per lane
    parameter bit SIGNED = 1'b0,      // lanes are two's complement
    parameter int CHUNK = 32,         // lanes per population count
    parameter int REG_EVERY = 2,      // adder levels between pipeline registers (the chunk tree)
    parameter int TAG_W = 1,          // sideband bits delayed with the data
    parameter bit XNOR = 1'b0,        // 1: lane ^ ~mask (keep or invert); 0: lane & mask (keep or drop)
    // derived, do not override
    parameter int CW = N < CHUNK ? N : CHUNK,   // lanes in the widest chunk
    parameter int NC = (N + CW - 1) / CW,       // chunks
    parameter int MAG = SIGNED ? (1 << (IN_W - 1)) : ((1 << IN_W) - 1),
    parameter int VW = $clog2(CW * MAG + 1) + (SIGNED ? 1 : 0),  // bits of one chunk's value
    parameter int OUT_W = VW + $clog2(NC)
) (
    /* verilator lint_off UNUSEDSIGNAL */  // rst_n only resets the tag
    input  logic                clk,
    input  logic                rst_n,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic [IN_W*N-1:0]   in_planes,  // bit i of plane k (lane i's bit k) at k*N + i
    input  logic [N-1:0]        in_mask,
    input  logic [TAG_W-1:0]    in_tag,
    output logic [OUT_W-1:0]    out_sum,    // two's complement when SIGNED
    output logic [TAG_W-1:0]    out_tag
);
    logic [NC*VW-1:0] chunk_sum, chunk_sum_r;
    logic [TAG_W-1:0] tag_r;

    for (genvar c = 0; c < NC; c++) begin : g_chunk
        localparam int LO = c * CW;
        localparam int LEN = (N - LO < CW) ? N - LO : CW;
        logic [VW-1:0] value;
        logic [IN_W*LEN-1:0] lanes;  // the chunk's planes after the mask, plane k at k*LEN
        for (genvar k = 0; k < IN_W; k++) begin : g_mask
            if (XNOR) begin : g_xnor
                assign lanes[k*LEN +: LEN] = ~(in_planes[k*N + LO +: LEN] ^ in_mask[LO +: LEN]);
            end else begin : g_and
                assign lanes[k*LEN +: LEN] = in_planes[k*N + LO +: LEN] & in_mask[LO +: LEN];
            end
        end
        // modulo 2^VW, exact: the chunk's value fits VW bits
        always_comb begin
            value = '0;
            for (int k = 0; k < IN_W; k++) begin
                if (SIGNED && k == IN_W - 1)
                    value = value - (VW'($countones(lanes[k*LEN +: LEN])) << k);
                else
                    value = value + (VW'($countones(lanes[k*LEN +: LEN])) << k);
            end
        end
        assign chunk_sum[c*VW +: VW] = value;
    end

    always_ff @(posedge clk) begin
        chunk_sum_r <= chunk_sum;
        if (!rst_n) tag_r <= '0;
        else tag_r <= in_tag;
    end

    mvu_add_tree #(
        .N(NC), .IN_W(VW), .SIGNED(SIGNED), .REG_EVERY(REG_EVERY), .TAG_W(TAG_W)
    ) u_tree (
        .clk, .rst_n, .in_data(chunk_sum_r), .in_tag(tag_r), .out_sum, .out_tag
    );
endmodule
