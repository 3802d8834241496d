// stream_fork: one AXI-stream in, N identical AXI-streams out (FINN's DuplicateStreams).
//
// Why: the fork at the start of every residual block sends each feature-map beat to the
// block's convolutions and to its shortcut. The two paths drain at different rates (the
// shortcut FIFO fills while the convolutions are still filling their line buffers), so each
// output must be free to take the beat on a different cycle.
//
// How: a registered fork. A beat is loaded into one output register and marked pending on
// every output; each output clears its own pending bit when it takes the beat. The input is
// ready when every output is either not pending or taking the beat this cycle, so a new beat
// can replace the old one on the cycle its last copy leaves: one beat per cycle when all
// outputs are ready. TVALID and TDATA come from registers (never from TREADY), and TREADY on
// the input depends only on the outputs' TREADY and registered state, so there is no
// combinational loop and no output can block another one's progress.
module stream_fork #(
    parameter int WIDTH = 8,  // TDATA bits of one beat (all streams alike)
    parameter int N     = 2   // number of output streams, >= 1
) (
    input  logic               ap_clk,
    input  logic               ap_rst_n,  // active-low, synchronous

    input  logic [WIDTH-1:0]   in_tdata,
    input  logic               in_tvalid,
    output logic               in_tready,

    output logic [N*WIDTH-1:0] out_tdata,  // output i in bits [i*WIDTH +: WIDTH]
    output logic [N-1:0]       out_tvalid,
    input  logic [N-1:0]       out_tready
);
    logic [WIDTH-1:0] data_q;
    logic [N-1:0]     pending_q;  // output i has not taken the beat in data_q yet

    // pending outputs that do not take their copy this cycle
    wire [N-1:0] still_pending = pending_q & ~out_tready;
    assign in_tready = ~|still_pending;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            pending_q <= '0;
        end else if (in_tvalid && in_tready) begin
            pending_q <= '1;
        end else begin
            pending_q <= still_pending;
        end
    end

    // the data register needs no reset: it is only seen while a pending bit is set
    always_ff @(posedge ap_clk) begin
        if (in_tvalid && in_tready) data_q <= in_tdata;
    end

    assign out_tvalid = pending_q;
    assign out_tdata  = {N{data_q}};
endmodule
