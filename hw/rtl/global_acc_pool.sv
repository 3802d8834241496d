// global_acc_pool: per-channel sum over all pixels of an image (FINN's GlobalAccPool), the
// integer core of global average pooling; the division by the pixel count is a scale that
// FINN's streamlining moved past this layer.
//
// Input: per image PIXELS pixels, each CHANNELS/PE beats of PE channels (FINN's folded order,
// channel fold innermost). Output: one vector per image, CHANNELS/PE beats of PE sums, sent as
// the last pixel's beats arrive.
//
// How: one accumulator word of PE x ACC_WIDTH bits per channel fold, in a small memory that is
// read asynchronously (LUTRAM: the default model pools 10 channels). The first pixel of an
// image overwrites the accumulator instead of adding to it, so nothing has to be cleared
// between images; the last pixel's sum goes to the output register instead of the memory.
// ACC_WIDTH is what the caller computes as exactly enough for PIXELS x the input range
// (FINN's output data type): every partial sum of k <= PIXELS values lies inside the final
// range, so no intermediate sum wraps. Throughput: one input beat per cycle; the input stalls
// only when an output beat is due and the output register is full and not being taken.
module global_acc_pool #(
    parameter int PE        = 1,   // channels per beat
    parameter int CHANNELS  = 10,  // channels per pixel, a multiple of PE
    parameter int PIXELS    = 49,  // pixels per image (H x W)
    parameter int IN_WIDTH  = 8,   // bits of one input element
    parameter bit IN_SIGNED = 1,
    parameter int ACC_WIDTH = 14   // bits of one output sum (signed iff IN_SIGNED)
) (
    input  logic                    ap_clk,
    input  logic                    ap_rst_n,  // active-low, synchronous

    input  logic [PE*IN_WIDTH-1:0]  in_tdata,
    input  logic                    in_tvalid,
    output logic                    in_tready,

    output logic [PE*ACC_WIDTH-1:0] out_tdata,
    output logic                    out_tvalid,
    input  logic                    out_tready
);
    localparam int FOLDS = CHANNELS / PE;
    localparam int FW = FOLDS > 1 ? $clog2(FOLDS) : 1;
    localparam int PW = PIXELS > 1 ? $clog2(PIXELS) : 1;

    logic [FW-1:0] fold_q;   // channel fold of the next input beat
    logic [PW-1:0] pixel_q;  // pixel of the next input beat
    logic          valid_q;
    logic [PE*ACC_WIDTH-1:0] out_q;
    logic [PE*ACC_WIDTH-1:0] acc_mem [FOLDS];

    wire first_pixel = pixel_q == '0;
    wire last_pixel  = pixel_q == PW'(PIXELS - 1);
    wire last_fold   = fold_q == FW'(FOLDS - 1);
    // only a last-pixel beat writes the output register; the others only need the memory
    assign in_tready = !last_pixel || !valid_q || out_tready;
    wire take = in_tvalid && in_tready;

    logic [PE*ACC_WIDTH-1:0] acc_rd, sum;
    assign acc_rd = acc_mem[fold_q];
    always_comb begin
        for (int i = 0; i < PE; i++) begin : lane
            logic [IN_WIDTH-1:0]  x;
            logic [ACC_WIDTH-1:0] x_ext, base;
            x = in_tdata[i*IN_WIDTH +: IN_WIDTH];
            // sign- or zero-extend; two's complement addition is the same for both kinds
            x_ext = IN_SIGNED ? ACC_WIDTH'($signed(x)) : ACC_WIDTH'(x);
            base = first_pixel ? '0 : acc_rd[i*ACC_WIDTH +: ACC_WIDTH];
            sum[i*ACC_WIDTH +: ACC_WIDTH] = base + x_ext;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (take && !last_pixel) acc_mem[fold_q] <= sum;
    end

    always_ff @(posedge ap_clk) begin
        if (take && last_pixel) out_q <= sum;
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            fold_q  <= '0;
            pixel_q <= '0;
            valid_q <= 1'b0;
        end else begin
            if (take) begin
                fold_q <= last_fold ? '0 : fold_q + 1'b1;
                if (last_fold) pixel_q <= last_pixel ? '0 : pixel_q + 1'b1;
            end
            if (take && last_pixel) valid_q <= 1'b1;
            else if (out_tready)    valid_q <= 1'b0;
        end
    end

    assign out_tvalid = valid_q;
    assign out_tdata  = out_q;
endmodule
