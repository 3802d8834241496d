// label_select: indices of the K largest of LABELS values (FINN's LabelSelect, the top-K head
// that turns class scores into predicted labels).
//
// Input: per vector LABELS/PE beats of PE values, label b*PE + j in lane j of beat b.
// Output: per vector K beats of one label each, largest value first (FINN's folded output
// shape (..., K, 1)). Order as FINN's python execution (ONNX TopK, largest, sorted):
// descending value, and among equal values the lower label first.
//
// How: a list of the K best (value, label) pairs so far, sorted, held in registers. Each beat
// inserts its PE values one after another (a chain of PE insertion steps in one cycle). A
// value enters the list in front of the first entry it is strictly greater than (or the first
// empty slot); the labels arrive in increasing order, so an equal value goes behind the ones
// already there, which is exactly the lower-label-first rule. On the last beat of a vector
// the updated list goes to an output buffer that sends its K labels one per cycle, and the
// list starts empty for the next vector, so the next vector's beats flow in while the labels
// leave: LABELS/PE cycles per vector when K <= LABELS/PE, K cycles otherwise.
module label_select #(
    parameter int LABELS    = 10,  // values per vector, a multiple of PE
    parameter int PE        = 1,   // values per input beat
    parameter int K         = 1,   // labels out per vector, 1 <= K <= LABELS
    parameter int IN_WIDTH  = 14,  // bits of one value
    parameter bit IN_SIGNED = 1,
    parameter int OUT_WIDTH = 8    // bits of one output label; 2**OUT_WIDTH >= LABELS
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,  // active-low, synchronous

    input  logic [PE*IN_WIDTH-1:0] in_tdata,
    input  logic                   in_tvalid,
    output logic                   in_tready,

    output logic [OUT_WIDTH-1:0]   out_tdata,
    output logic                   out_tvalid,
    input  logic                   out_tready
);
    localparam int FOLDS = LABELS / PE;
    localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
    localparam int CW = $clog2(K + 1);  // counts 0..K labels left to send
    localparam int VW = IN_WIDTH + 1;   // values compared as signed with one extra top bit

    // the sorted list: slot 0 holds the largest value so far
    logic signed [VW-1:0]    val_q   [K];
    logic [OUT_WIDTH-1:0]    label_q [K];
    logic [K-1:0]            used_q;       // a prefix of ones: the slots filled so far
    logic [FW-1:0]           fold_q;       // beat of the current vector

    logic [OUT_WIDTH-1:0]    obuf_q [K];   // labels being sent, next one in slot 0
    logic [CW-1:0]           left_q;       // labels still to send

    wire last_fold = fold_q == FW'(FOLDS - 1);
    // a last beat needs the output buffer free (or freeing its last label this cycle)
    wire obuf_free = left_q == '0 || (left_q == CW'(1) && out_tready);
    assign in_tready = !last_fold || obuf_free;
    wire take = in_tvalid && in_tready;

    // insertion chain: stage s holds the list after lanes 0..s-1 of this beat went in
    logic signed [VW-1:0]    sval   [PE+1][K];
    logic [OUT_WIDTH-1:0]    slabel [PE+1][K];
    logic [K-1:0]            sused  [PE+1];
    always_comb begin
        for (int k = 0; k < K; k++) begin
            sval[0][k]   = val_q[k];
            slabel[0][k] = label_q[k];
        end
        sused[0] = used_q;
        for (int j = 0; j < PE; j++) begin : insert_lane
            logic signed [VW-1:0]  x;
            logic [OUT_WIDTH-1:0]  lab;
            logic [K-1:0]          goes_before;  // x goes in front of slot k's entry
            x = {IN_SIGNED ? in_tdata[j*IN_WIDTH + IN_WIDTH-1] : 1'b0, in_tdata[j*IN_WIDTH +: IN_WIDTH]};
            lab = OUT_WIDTH'(int'(fold_q) * PE + j);
            for (int k = 0; k < K; k++) goes_before[k] = !sused[j][k] || x > sval[j][k];
            // goes_before is monotone (a suffix of ones): slot k takes x where it first
            // becomes true, the entry of slot k-1 behind it, and keeps its own before it
            for (int k = 0; k < K; k++) begin
                if (!goes_before[k]) begin
                    sval[j+1][k]   = sval[j][k];
                    slabel[j+1][k] = slabel[j][k];
                end else if (k > 0 && goes_before[k-1]) begin
                    sval[j+1][k]   = sval[j][k-1];
                    slabel[j+1][k] = slabel[j][k-1];
                end else begin
                    sval[j+1][k]   = x;
                    slabel[j+1][k] = lab;
                end
            end
            sused[j+1] = K'({sused[j], 1'b1});  // one more slot filled
        end
    end

    always_ff @(posedge ap_clk) begin
        if (take) begin
            for (int k = 0; k < K; k++) begin
                val_q[k]   <= sval[PE][k];
                label_q[k] <= slabel[PE][k];
            end
        end
        if (take && last_fold) begin
            for (int k = 0; k < K; k++) obuf_q[k] <= slabel[PE][k];
        end else if (out_tvalid && out_tready) begin
            for (int k = 0; k + 1 < K; k++) obuf_q[k] <= obuf_q[k+1];
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            used_q <= '0;
            fold_q <= '0;
            left_q <= '0;
        end else begin
            if (take) begin
                used_q <= last_fold ? '0 : sused[PE];
                fold_q <= last_fold ? '0 : fold_q + 1'b1;
            end
            if (take && last_fold)           left_q <= CW'(K);
            else if (out_tvalid && out_tready) left_q <= left_q - 1'b1;
        end
    end

    assign out_tvalid = left_q != '0;
    assign out_tdata  = obuf_q[0];
endmodule
