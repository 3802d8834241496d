// stream_fifo: AXI-stream FIFO of DEPTH beats with occupancy monitors, for the stitched top.
//
// Why not finn-rtllib's fifo.sv: Verilator 5.48 rejects its constant function returning a
// struct (INIT_ABITS), so the design that Verilator checks could not be the one that goes to
// Vivado. This FIFO is plain SystemVerilog both accept.
// Storage: DEPTH-1 entries in a memory with an asynchronous read (LUTRAM / SRL on Xilinx) plus
// a registered output beat, so TDATA/TVALID leave from a flip-flop and throughput is one beat
// per cycle. count = beats accepted and not yet delivered; maxcount = its peak since reset,
// which hw.stitch reads after a simulation to size the FIFO.
// LIMIT_PORT = 1 (simulation, for sizing only): the FIFO holds at most `limit` beats (2..DEPTH),
// cycle for cycle what a FIFO of DEPTH = limit does, so one Verilator build of a deep design
// tries every candidate depth (hw/fifo_sizing.py); the built accelerator has LIMIT_PORT = 0.
module stream_fifo #(
    parameter int unsigned DEPTH = 2,        // beats held, >= 2
    parameter int unsigned DATA_WIDTH = 8,
    parameter RAM_STYLE = "distributed",     // Xilinx ram_style of the storage
    parameter bit LIMIT_PORT = 1'b0          // 1: `limit` caps the beats held (simulation)
) (
    input  logic clk,
    input  logic rst,                        // synchronous, active high
    input  logic [DATA_WIDTH-1:0] idat,
    input  logic ivld,
    output logic irdy,
    output logic [DATA_WIDTH-1:0] odat,
    output logic ovld,
    input  logic ordy,
    /* verilator lint_off UNUSEDSIGNAL */  // read only with LIMIT_PORT = 1
    input  logic [$clog2(DEPTH+1)-1:0] limit,
    /* verilator lint_on UNUSEDSIGNAL */
    output logic [$clog2(DEPTH+1)-1:0] count,
    output logic [$clog2(DEPTH+1)-1:0] maxcount
);
    localparam int unsigned MEM_DEPTH = DEPTH - 1;
    localparam int unsigned AW = MEM_DEPTH > 1 ? $clog2(MEM_DEPTH) : 1;

    (* ram_style = RAM_STYLE *) logic [DATA_WIDTH-1:0] mem [0:MEM_DEPTH-1];
    logic [AW-1:0] wr_ptr, rd_ptr;
    logic [$clog2(DEPTH+1)-1:0] stored;     // beats in mem (not counting the output register)

    wire push = ivld && irdy;
    wire load = (!ovld || ordy) && stored != 0;  // move the oldest stored beat to the output
    wire pop = ovld && ordy;

    // room while the memory (DEPTH-1 beats, the output register holds one more) has space
    if (LIMIT_PORT) begin : g_limit
        assign irdy = stored < $clog2(DEPTH+1)'(MEM_DEPTH) && stored + 1'b1 < limit;
    end else begin : g_depth
        assign irdy = stored < MEM_DEPTH;
    end

    function automatic logic [AW-1:0] next(input logic [AW-1:0] p);
        return (p == AW'(MEM_DEPTH - 1)) ? '0 : p + 1'b1;
    endfunction

    always_ff @(posedge clk) begin
        if (push) mem[wr_ptr] <= idat;
        if (rst) begin
            wr_ptr <= '0;
            rd_ptr <= '0;
            stored <= '0;
            ovld <= 1'b0;
        end else begin
            if (push) wr_ptr <= next(wr_ptr);
            if (load) begin
                odat <= mem[rd_ptr];
                rd_ptr <= next(rd_ptr);
            end
            if (load) ovld <= 1'b1;
            else if (pop) ovld <= 1'b0;
            stored <= stored + (push ? 1'b1 : 1'b0) - (load ? 1'b1 : 1'b0);
        end
    end

    // occupancy: everything accepted and not yet delivered
    wire [$clog2(DEPTH+1)-1:0] count_next = count + (push ? 1'b1 : 1'b0) - (pop ? 1'b1 : 1'b0);
    always_ff @(posedge clk) begin
        if (rst) begin
            count <= '0;
            maxcount <= '0;
        end else begin
            count <= count_next;
            if (count_next > maxcount) maxcount <= count_next;
        end
    end
endmodule
