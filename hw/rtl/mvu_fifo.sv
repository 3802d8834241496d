// mvu_fifo: small synchronous FIFO (distributed RAM) that drives an AXI-stream output.
//
// The output FIFO of mvu_bipolar. The writer never checks for space: mvu_bipolar only issues
// work whose result is guaranteed a slot (a credit counter bounded by DEPTH), which keeps the
// output TREADY out of every pipeline enable. The head is read combinationally, so a beat
// written in one cycle is offered on the output from the next cycle on, and TREADY low simply
// holds it (TVALID and TDATA stay stable until the handshake, as AXI-stream requires).

module mvu_fifo #(
    parameter int WIDTH = 8,
    parameter int DEPTH = 8  // a power of two, >= 2
) (
    input  logic             clk,
    input  logic             rst_n,
    input  logic             wr_en,      // the caller guarantees the FIFO is not full
    input  logic [WIDTH-1:0] wr_data,
    output logic             out_valid,
    output logic [WIDTH-1:0] out_data,
    input  logic             out_ready
);
    localparam int AW = $clog2(DEPTH);

    (* ram_style = "distributed" *) logic [WIDTH-1:0] mem [DEPTH];
    logic [AW-1:0] wr_ptr, rd_ptr;
    logic [AW:0] count;

    wire rd_en = out_valid && out_ready;

    always_ff @(posedge clk) begin
        if (wr_en) mem[wr_ptr] <= wr_data;
    end

    always_ff @(posedge clk) begin
        if (!rst_n) begin
            wr_ptr <= '0;
            rd_ptr <= '0;
            count <= '0;
        end else begin
            if (wr_en) wr_ptr <= wr_ptr + 1'b1;
            if (rd_en) rd_ptr <= rd_ptr + 1'b1;
            count <= count + (AW+1)'(wr_en) - (AW+1)'(rd_en);
        end
    end

    assign out_valid = (count != 0);
    assign out_data = mem[rd_ptr];
endmodule
