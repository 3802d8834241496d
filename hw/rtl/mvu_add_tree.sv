// mvu_add_tree: pipelined binary adder tree, the sum of N integers of IN_W bits each.
//
// Part of the bipolar-weight matrix-vector unit (mvu_bipolar): it sums the SIMD lanes of one
// input fold. Every level widens by one bit, so no level can overflow; the N leaves are padded
// with zeros up to a power of two. A register sits after every REG_EVERY levels and after the
// last one, so that the longest combinational path is REG_EVERY adders deep however large SIMD
// grows (timing holds as the design is unfolded). The pipeline never stalls (the unit upstream
// uses credits instead), so the registers have no enable; a TAG_W-bit sideband travels through
// the same registers, which keeps control flags aligned with the data without the instantiating
// module having to know the latency. Only the tag registers are reset: the data is don't-care
// until a valid tag comes out.
//
// Latency: ceil($clog2(N) / REG_EVERY) cycles (0 when N == 1).

module mvu_add_tree #(
    parameter int N = 8,           // number of addends
    parameter int IN_W = 4,        // bits per addend
    parameter bit SIGNED = 1'b0,   // addends are two's complement (else unsigned)
    parameter int REG_EVERY = 2,   // adder levels between pipeline registers
    parameter int TAG_W = 1        // sideband bits delayed with the data
) (
    /* verilator lint_off UNUSEDSIGNAL */  // no registers when N == 1
    input  logic                          clk,
    input  logic                          rst_n,
    /* verilator lint_on UNUSEDSIGNAL */
    input  logic [N*IN_W-1:0]             in_data,  // addend i in bits [i*IN_W +: IN_W]
    input  logic [TAG_W-1:0]              in_tag,
    output logic [IN_W+$clog2(N)-1:0]     out_sum,
    output logic [TAG_W-1:0]              out_tag
);
    localparam int LEVELS = $clog2(N);
    localparam int LEAVES = 1 << LEVELS;

    for (genvar l = 0; l <= LEVELS; l++) begin : g_lvl
        localparam int W = IN_W + l;         // operand width at this level
        localparam int CNT = LEAVES >> l;    // operands at this level
        logic [CNT*W-1:0] v;
        logic [TAG_W-1:0] tag;

        if (l == 0) begin : g_leaf
            for (genvar i = 0; i < LEAVES; i++) begin : g_in
                if (i < N) begin : g_real
                    assign v[i*W +: W] = in_data[i*IN_W +: IN_W];
                end else begin : g_pad
                    assign v[i*W +: W] = '0;
                end
            end
            assign tag = in_tag;
        end else begin : g_add
            logic [CNT*W-1:0] sum;
            for (genvar i = 0; i < CNT; i++) begin : g_node
                logic [W-2:0] a, b;
                assign a = g_lvl[l-1].v[(2*i)*(W-1) +: W-1];
                assign b = g_lvl[l-1].v[(2*i+1)*(W-1) +: W-1];
                // extend by one bit (sign or zero) so the sum cannot overflow
                assign sum[i*W +: W] = {SIGNED & a[W-2], a} + {SIGNED & b[W-2], b};
            end
            if ((l % REG_EVERY == 0) || (l == LEVELS)) begin : g_reg
                always_ff @(posedge clk) begin
                    v <= sum;
                    if (!rst_n) tag <= '0;
                    else tag <= g_lvl[l-1].tag;
                end
            end else begin : g_comb
                assign v = sum;
                assign tag = g_lvl[l-1].tag;
            end
        end
    end

    assign out_sum = g_lvl[LEVELS].v;
    assign out_tag = g_lvl[LEVELS].tag;
endmodule
