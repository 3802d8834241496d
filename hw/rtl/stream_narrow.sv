// stream_narrow: AXI-stream width converter, IN_BITS = K * OUT_BITS (K >= 2).
//
// Why: a layer whose folding reads 1/K of the bits per beat that its producer writes (fewer
// SIMD than the producer's PE); FINN's InsertDWC puts a converter on that edge.
// How: an input beat is held in a register and sent out as K slices, the lowest bits first,
// so the bit sequence of the stream is unchanged. The slice is chosen by a K-way multiplexer
// on the slot count. The next input beat is taken while the last slice leaves, so the output
// runs at one beat per cycle without bubbles.
module stream_narrow #(
    parameter int OUT_BITS = 8,  // TDATA bits of an output beat
    parameter int K        = 2   // output beats per input beat, >= 2
) (
    input  logic                  ap_clk,
    input  logic                  ap_rst_n,  // active-low, synchronous

    input  logic [K*OUT_BITS-1:0] in_tdata,
    input  logic                  in_tvalid,
    output logic                  in_tready,

    output logic [OUT_BITS-1:0]   out_tdata,
    output logic                  out_tvalid,
    input  logic                  out_tready
);
    localparam int SLOT_BITS = $clog2(K);

    logic [K-1:0][OUT_BITS-1:0] data_q;  // slice k in bits [k*OUT_BITS +: OUT_BITS]
    logic [SLOT_BITS-1:0]       slot_q;  // the slice on the output now
    logic                       full_q;  // data_q holds slices not sent yet

    wire last = slot_q == SLOT_BITS'(K - 1);
    wire give = full_q && out_tready;
    assign in_tready = !full_q || (give && last);
    wire take = in_tvalid && in_tready;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            slot_q <= '0;
            full_q <= 1'b0;
        end else begin
            if (give) begin
                slot_q <= last ? '0 : slot_q + 1'b1;
                if (last) full_q <= 1'b0;
            end
            if (take) full_q <= 1'b1;
        end
    end

    // no reset: seen only while full
    always_ff @(posedge ap_clk) begin
        if (take) data_q <= in_tdata;
    end

    assign out_tdata  = data_q[slot_q];
    assign out_tvalid = full_q;
endmodule
