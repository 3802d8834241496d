// stream_add: element-wise sum of two AXI-streams, PE lanes per beat (FINN's ElementwiseAdd
// with both operands streamed, lhs_style = rhs_style = "input").
//
// Why: the end of every residual block adds the block's output to its shortcut. Both arrive
// as streams in the same folded order, so the add is a join: a beat leaves each input only
// together with the matching beat of the other input.
//
// How: each lane sign- or zero-extends its operands (A_SIGNED / B_SIGNED) to the output
// element width O_WIDTH and adds them there. The caller sizes O_WIDTH from the node's output
// data type, which must hold every possible sum, so the add never wraps. The sum goes into an
// output register that accepts a new beat whenever it is empty or being emptied: one beat per
// cycle under no back-pressure, one cycle of latency. An input is ready only when the other
// input is valid, the usual join: neither input is consumed alone, so none is lost.
module stream_add #(
    parameter int PE       = 1,  // elements per beat
    parameter int A_WIDTH  = 4,  // bits of one lhs element (in0)
    parameter bit A_SIGNED = 1,
    parameter int B_WIDTH  = 4,  // bits of one rhs element (in1)
    parameter bit B_SIGNED = 1,
    parameter int O_WIDTH  = 5   // bits of one output element; >= what the sum needs
) (
    input  logic                ap_clk,
    input  logic                ap_rst_n,  // active-low, synchronous

    input  logic [PE*A_WIDTH-1:0] a_tdata,  // element i in bits [i*A_WIDTH +: A_WIDTH]
    input  logic                  a_tvalid,
    output logic                  a_tready,

    input  logic [PE*B_WIDTH-1:0] b_tdata,
    input  logic                  b_tvalid,
    output logic                  b_tready,

    output logic [PE*O_WIDTH-1:0] out_tdata,
    output logic                  out_tvalid,
    input  logic                  out_tready
);
    logic                  valid_q;
    logic [PE*O_WIDTH-1:0] sum_q;

    wire load = a_tvalid && b_tvalid && (!valid_q || out_tready);
    assign a_tready = b_tvalid && (!valid_q || out_tready);
    assign b_tready = a_tvalid && (!valid_q || out_tready);

    logic [PE*O_WIDTH-1:0] sum;
    always_comb begin
        for (int i = 0; i < PE; i++) begin : lane
            logic [A_WIDTH-1:0] a;
            logic [B_WIDTH-1:0] b;
            logic [O_WIDTH-1:0] a_ext, b_ext;
            a = a_tdata[i*A_WIDTH +: A_WIDTH];
            b = b_tdata[i*B_WIDTH +: B_WIDTH];
            // sign- or zero-extend each operand by its own type; the O_WIDTH-bit two's
            // complement sum is then exact, as O_WIDTH holds every possible result
            a_ext = A_SIGNED ? O_WIDTH'($signed(a)) : O_WIDTH'(a);
            b_ext = B_SIGNED ? O_WIDTH'($signed(b)) : O_WIDTH'(b);
            sum[i*O_WIDTH +: O_WIDTH] = a_ext + b_ext;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            valid_q <= 1'b0;
        end else if (load) begin
            valid_q <= 1'b1;
        end else if (out_tready) begin
            valid_q <= 1'b0;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (load) sum_q <= sum;
    end

    assign out_tvalid = valid_q;
    assign out_tdata  = sum_q;
endmodule
