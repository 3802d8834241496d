// stream_widen: AXI-stream width converter, OUT_BITS = K * IN_BITS (K >= 2).
//
// Why: a layer whose folding reads K times the bits per beat that its producer writes (a
// consumer with K times the SIMD); FINN's InsertDWC puts a converter on that edge.
// How: K input beats are written into the K slots of one output register, the first beat in
// the lowest bits, so the bit sequence of the stream is unchanged. Each flip-flop is written
// straight from the input with a slot enable: no multiplexer in the data path. The output is
// the register itself (valid while full); the input is ready while the register is not full
// or is being emptied this cycle, so one input beat per cycle is taken at full rate.
module stream_widen #(
    parameter int IN_BITS = 8,   // TDATA bits of an input beat
    parameter int K       = 2    // input beats per output beat, >= 2
) (
    input  logic                 ap_clk,
    input  logic                 ap_rst_n,  // active-low, synchronous

    input  logic [IN_BITS-1:0]   in_tdata,
    input  logic                 in_tvalid,
    output logic                 in_tready,

    output logic [K*IN_BITS-1:0] out_tdata,
    output logic                 out_tvalid,
    input  logic                 out_tready
);
    localparam int SLOT_BITS = $clog2(K);

    logic [K*IN_BITS-1:0] data_q;
    logic [SLOT_BITS-1:0] slot_q;  // the slot the next input beat goes to
    logic                 full_q;  // all K slots written, waiting to leave

    assign in_tready = !full_q || out_tready;
    wire take = in_tvalid && in_tready;
    wire last = slot_q == SLOT_BITS'(K - 1);

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            slot_q <= '0;
            full_q <= 1'b0;
        end else begin
            if (out_tready) full_q <= 1'b0;  // leaves now (or was not full)
            if (take) begin
                slot_q <= last ? '0 : slot_q + 1'b1;
                if (last) full_q <= 1'b1;
            end
        end
    end

    // slot k is written when the beat for it arrives; no reset: seen only once full
    for (genvar k = 0; k < K; k++) begin : g_slot
        always_ff @(posedge ap_clk) begin
            if (take && slot_q == SLOT_BITS'(k)) data_q[k*IN_BITS +: IN_BITS] <= in_tdata;
        end
    end

    assign out_tdata  = data_q;
    assign out_tvalid = full_q;
endmodule
