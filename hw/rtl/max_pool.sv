// max_pool: per-channel maximum over a pooling window (FINN's Pool with Function "MaxPool",
// which FINN has only in HLS). Hand-written for wrn1bit; hw/custom_op/maxpool_rtl.py
// (MaxPool_rtl) instantiates it from a generated wrapper with FINN's port names.
//
// Input: the stream of FINN's depthwise sliding window (ConvolutionInputGenerator with
// depthwise = 1 and SIMD = PE), which sends, per output pixel, for each channel fold the
// WINDOW = K_h x K_w window positions one beat after another, PE channels per beat:
// [pixel][channel fold][kernel position][PE]. (With PE = channels that is FINN's im2col order
// [pixel][kernel position][channel].) So every WINDOW consecutive beats are the window of the
// same PE channels, and their lane-wise maximum is one output beat.
// Output: per output pixel CHANNELS/PE beats of PE maxima: [pixel][channel fold][PE], FINN's
// folded order.
//
// How: a running maximum per lane; the first beat of a window loads it, the others compare
// with it, the last one's result goes to the output register. Elements are compared as signed
// or unsigned IN_WIDTH-bit integers (IN_SIGNED); FINN's BIPOLAR travels as one unsigned bit
// (-1 -> 0, +1 -> 1), whose order is the same. Throughput: one input beat per cycle; the input
// waits only when a window's last beat arrives while the output register holds a beat that is
// not being taken.
module max_pool #(
    parameter int PE        = 1,  // channels per beat
    parameter int WINDOW    = 4,  // beats per window: kernel height x kernel width
    parameter int IN_WIDTH  = 2,  // bits of one element
    parameter bit IN_SIGNED = 0   // elements are two's complement
) (
    input  logic                   ap_clk,
    input  logic                   ap_rst_n,  // active-low, synchronous

    input  logic [PE*IN_WIDTH-1:0] in_tdata,
    input  logic                   in_tvalid,
    output logic                   in_tready,

    output logic [PE*IN_WIDTH-1:0] out_tdata,
    output logic                   out_tvalid,
    input  logic                   out_tready
);
    localparam int KW = WINDOW > 1 ? $clog2(WINDOW) : 1;

    logic [KW-1:0]          pos_q;    // window position of the next input beat
    logic [PE*IN_WIDTH-1:0] max_q;    // running maximum of the window so far
    logic [PE*IN_WIDTH-1:0] out_q;
    logic                   valid_q;

    wire first = pos_q == '0;
    wire last  = pos_q == KW'(WINDOW - 1);
    // only a window's last beat writes the output register
    assign in_tready = !last || !valid_q || out_tready;
    wire take = in_tvalid && in_tready;

    // the maximum of the window so far with this beat: the beat itself at a window's start
    logic [PE*IN_WIDTH-1:0] max_next;
    always_comb begin
        for (int i = 0; i < PE; i++) begin : lane
            logic [IN_WIDTH-1:0] x, m;
            logic                greater;
            x = in_tdata[i*IN_WIDTH +: IN_WIDTH];
            m = max_q[i*IN_WIDTH +: IN_WIDTH];
            greater = IN_SIGNED ? $signed(x) > $signed(m) : x > m;
            max_next[i*IN_WIDTH +: IN_WIDTH] = (first || greater) ? x : m;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (take && !last) max_q <= max_next;
    end

    always_ff @(posedge ap_clk) begin
        if (take && last) out_q <= max_next;
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            pos_q   <= '0;
            valid_q <= 1'b0;
        end else begin
            if (take) pos_q <= last ? '0 : pos_q + 1'b1;
            if (take && last)    valid_q <= 1'b1;
            else if (out_tready) valid_q <= 1'b0;
        end
    end

    assign out_tvalid = valid_q;
    assign out_tdata  = out_q;
endmodule
