// threshold_table: FINN's multi-threshold activation by table lookup, AXI-stream in/out.
//
// Function (per input element x of channel c, as FINN's Thresholding):
//   out = ACT_VAL + #{k : T[c][k] <= x}
// For a narrow input type that is a function of (c, x) over a small domain, so it is read from a
// table instead of compared: lane p of a beat looks up word {nf, x - min(x)} of its own table,
// which holds the outputs of channels p, PE+p, 2*PE+p, ... (nf = the beat's channel fold).
//
// Why: WRN's residual stream is requantized to 8 bits by 255 thresholds after every add; FINN's
// Thresholding_rtl searches them in 8 pipelined comparator stages, 100-200 LUT per lane where
// the input has 9-13 bits. A table of 2^IN_W words of OUT_W bits per channel fold fits one or
// two block RAMs per lane and needs no comparator at all. The generator
// (hw/custom_op/thresholdtable_rtl.py) fills the tables and uses this unit only where they are
// small.
//
// Tables live outside this module (generated per layer): lane p's read port gives
// t_data[p*OUT_W +: OUT_W] = TABLE_p[t_addr[p*TAW +: TAW]] one cycle after t_en.
//
// Back-pressure: as mvu_bipolar, the lookup never stalls; a beat is only taken while a credit
// is free (beats in flight or waiting in the output FIFO < FIFO_DEPTH), so output TREADY drives
// no memory enable and a ready sink sees one beat per cycle.

module threshold_table #(
    parameter int PE = 1,             // channels per beat
    parameter int NF = 1,             // channel folds: NumChannels / PE
    parameter int IN_W = 8,           // bits per input element
    parameter bit IN_SIGNED = 1'b1,   // inputs are two's complement
    parameter int OUT_W = 8,          // bits per output element
    // derived, do not override
    parameter int NFW = $clog2(NF > 1 ? NF : 2),
    parameter int TAW = (NF > 1 ? NFW : 0) + IN_W   // table address: {nf, x - min(x)}
) (
    input  logic                ap_clk,
    input  logic                ap_rst_n,

    input  logic [PE*IN_W-1:0]  in_tdata,
    input  logic                in_tvalid,
    output logic                in_tready,

    output logic [PE*OUT_W-1:0] out_tdata,
    output logic                out_tvalid,
    input  logic                out_tready,

    // the tables' read ports, one per lane
    output logic                t_en,
    output logic [PE*TAW-1:0]   t_addr,
    input  logic [PE*OUT_W-1:0] t_data
);
    localparam int LATENCY = 1;  // the tables' read
    localparam int FIFO_DEPTH = 1 << $clog2(LATENCY + 2);
    localparam int PW = $clog2(FIFO_DEPTH) + 1;

    /* verilator lint_off UNUSEDSIGNAL */  // not read when NF = 1
    logic [NFW-1:0] nf;
    /* verilator lint_on UNUSEDSIGNAL */
    logic [PW-1:0] pending;  // beats taken and not yet delivered
    logic v_s1;

    wire credit = pending < PW'(FIFO_DEPTH);
    wire take = in_tvalid && credit;
    wire out_take = out_tvalid && out_tready;
    assign in_tready = credit;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            nf <= '0;
            pending <= '0;
            v_s1 <= 1'b0;
        end else begin
            if (take) nf <= (nf == NFW'(NF - 1)) ? '0 : nf + 1'b1;
            pending <= pending + PW'(take) - PW'(out_take);
            v_s1 <= take;
        end
    end

    // the table address of each lane: x as an offset from the type's minimum (the sign bit
    // flipped for signed inputs), behind the channel fold
    assign t_en = take;
    for (genvar p = 0; p < PE; p++) begin : g_addr
        logic [IN_W-1:0] x;
        assign x = in_tdata[p*IN_W +: IN_W] ^ (IN_SIGNED ? IN_W'(1) << (IN_W - 1) : '0);
        if (NF > 1) begin : g_fold
            assign t_addr[p*TAW +: TAW] = {nf, x};
        end else begin : g_one
            assign t_addr[p*TAW +: TAW] = x;
        end
    end

    mvu_fifo #(.WIDTH(PE * OUT_W), .DEPTH(FIFO_DEPTH)) u_out (
        .clk(ap_clk), .rst_n(ap_rst_n), .wr_en(v_s1), .wr_data(t_data),
        .out_valid(out_tvalid), .out_data(out_tdata), .out_ready(out_tready)
    );
endmodule
