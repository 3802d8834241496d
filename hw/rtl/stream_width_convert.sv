// stream_width_convert: AXI-stream width converter from IN_BITS to OUT_BITS per beat (FINN's
// StreamingDataWidthConverter), the bit sequence of the stream unchanged.
//
// Why not finn-rtllib's dwc_axi/vpc: it is a general converter over IN_BITS * OUT_BITS
// positions; yosys maps its narrowing instances to about 8 LUT per input bit (288 -> 12 bits:
// 2,267 LUT) and it was about a third of the whole accelerator's Verilator time.
// How: a whole ratio is one stream_widen or stream_narrow; any other ratio widens to the least
// common multiple L of the two widths and narrows L to OUT_BITS (48 -> 144 -> 72). The stream
// carries a whole number of beats of either width per image, hence of L bits.
module stream_width_convert #(
    parameter int IN_BITS  = 8,
    parameter int OUT_BITS = 8
) (
    input  logic                ap_clk,
    input  logic                ap_rst_n,  // active-low, synchronous

    input  logic [IN_BITS-1:0]  in_tdata,
    input  logic                in_tvalid,
    output logic                in_tready,

    output logic [OUT_BITS-1:0] out_tdata,
    output logic                out_tvalid,
    input  logic                out_tready
);
    function automatic int gcd(input int a, input int b);
        while (b != 0) begin
            automatic int t = a % b;
            a = b;
            b = t;
        end
        return a;
    endfunction

    localparam int L = IN_BITS / gcd(IN_BITS, OUT_BITS) * OUT_BITS;  // least common multiple

    if (L == IN_BITS && L == OUT_BITS) begin : g_same
        assign out_tdata  = in_tdata;
        assign out_tvalid = in_tvalid;
        assign in_tready  = out_tready;
    end else if (L == OUT_BITS) begin : g_widen
        stream_widen #(.IN_BITS(IN_BITS), .K(L / IN_BITS)) widen (
            .ap_clk, .ap_rst_n, .in_tdata, .in_tvalid, .in_tready, .out_tdata, .out_tvalid, .out_tready);
    end else if (L == IN_BITS) begin : g_narrow
        stream_narrow #(.OUT_BITS(OUT_BITS), .K(L / OUT_BITS)) narrow (
            .ap_clk, .ap_rst_n, .in_tdata, .in_tvalid, .in_tready, .out_tdata, .out_tvalid, .out_tready);
    end else begin : g_via_lcm
        logic [L-1:0] mid_tdata;
        logic         mid_tvalid, mid_tready;
        stream_widen #(.IN_BITS(IN_BITS), .K(L / IN_BITS)) widen (
            .ap_clk, .ap_rst_n, .in_tdata, .in_tvalid, .in_tready,
            .out_tdata(mid_tdata), .out_tvalid(mid_tvalid), .out_tready(mid_tready));
        stream_narrow #(.OUT_BITS(OUT_BITS), .K(L / OUT_BITS)) narrow (
            .ap_clk, .ap_rst_n, .in_tdata(mid_tdata), .in_tvalid(mid_tvalid), .in_tready(mid_tready),
            .out_tdata, .out_tvalid, .out_tready);
    end
endmodule
