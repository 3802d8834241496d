// mvu_bipolar: matrix-vector(-activation) unit for bipolar (+1/-1) weights, AXI-stream in/out.
//
// Why it exists: FINN's RTL MVU is DSP-based and refuses 1-bit weights, so a binary-weight
// layer would need FINN's HLS MVAU and with it Vitis HLS. This unit computes the same thing as
// FINN's MVAU for bipolar weights times IN_W-bit (1..8, signed or unsigned) inputs, in RTL.
//
// Function (per input vector x of MW elements, per output channel c of MH):
//   acc[c] = sum_j W[j][c] * x[j],   W in {-1,+1}
//   NO_ACT = 1: out[c] = acc[c]
//   NO_ACT = 0: out[c] = ACT_VAL + #{k : T[c][k] <= acc[c]}   (FINN's multi-threshold)
// computed without a negation per lane: each PE sums its lanes with x kept where W = +1 and
// inverted (~x) where W = -1 (mvu_masked_sum, XNOR = 1, by population counts over bit planes).
// ~x = -x + C (C = 2^IN_W - 1 unsigned, -1 signed), so that sum is xsum[c] = acc[c] + C * N[c],
// N[c] the number of -1 weights of channel c: a constant per channel. The generator takes it
// out where it costs nothing: with an activation it adds C * N[c] to channel c's thresholds
// (acc >= T  <=>  xsum >= T + C * N[c]); without one, the ROM on the threshold port holds
// -C * N[c], the value channel c's accumulator starts from instead of 0, so it ends at acc[c].
// (An earlier form, 2 * (sum where W = +1) - (sum of all lanes), needed the sum of all lanes
// besides the PEs' sums and a subtractor per PE.)
//
// Folding, as FINN's MVAU: SIMD input elements per beat, SF = MW/SIMD beats per vector; PE
// output channels per output beat, NF = MH/PE beats per vector. One (nf, sf) fold issues per
// cycle; the input vector is taken from the stream during nf = 0 and replayed from a buffer for
// the other neuron folds, so one vector takes SF*NF cycles. Output beat nf holds channels
// nf*PE .. nf*PE+PE-1, element p in bits [p*OUT_W +: OUT_W] (two's complement).
//
// Memories live outside this module (they are generated per layer): the weight ROM word at
// address nf*SF+sf holds bit p*SIMD+i = 1 for W[sf*SIMD+i][nf*PE+p] = +1; the threshold ROM
// word at address nf holds channel nf*PE+p's thresholds T + C * N (THR_W-bit two's complement)
// in bits [(p*NSTEPS+k)*THR_W +: THR_W], or with NO_ACT its accumulator start -C * N in bits
// [p*THR_W +: THR_W] (NSTEPS = 1). Both ROMs are read with one cycle of latency: the
// thresholds when a neuron fold's accumulators are done, the start values when its first
// input fold is issued (they travel down the adder trees beside the fold).
//
// Back-pressure: the datapath never stalls. A fold that completes an output beat is only
// issued while a credit is free (beats in flight or waiting in the output FIFO < FIFO_DEPTH),
// so the FIFO cannot overflow and output TREADY drives no pipeline enable; FIFO_DEPTH covers
// the pipeline latency, so a ready sink sees one beat per NF fold without throttling.
//
// Accumulator: ACC_W bits from MW and the input range (|acc| <= MW * max|x|), never
// truncated; xsum lies in [0, MW * MAG] (unsigned) or in the signed input range times MW, and
// so fits ACC_W as well; intermediate sums wrap modulo 2^ACC_W, which is exact because the
// final values fit. With NO_ACT the output keeps the low OUT_W bits of acc (the generator
// checks the layer's real accumulator range fits OUT_W) or sign-extends it.

module mvu_bipolar #(
    parameter int MW = 16,            // input vector length (matrix width)
    parameter int MH = 16,            // output vector length (matrix height)
    parameter int PE = 2,             // output channels per cycle, divides MH
    parameter int SIMD = 4,           // input elements per cycle, divides MW
    parameter int IN_W = 4,           // bits per input element (1..8)
    parameter bit IN_SIGNED = 1'b0,   // inputs are two's complement
    parameter int OUT_W = 8,          // bits per output element (the output data type)
    parameter bit NO_ACT = 1'b1,      // 1: raw accumulator out; 0: multi-threshold activation
    parameter int NSTEPS = 1,         // thresholds per channel (NO_ACT = 0); 1 with NO_ACT
    parameter int THR_W = 1,          // bits per threshold or offset, two's complement
    parameter int ACT_VAL = 0,        // added to the threshold count (FINN's ActVal)
    parameter int REG_EVERY = 2,      // adder levels between pipeline registers
    parameter int CHUNK = 32,         // lanes per population count (mvu_masked_sum)
    // derived, do not override
    parameter int WMEM = (MW / SIMD) * (MH / PE),
    parameter int WAW = $clog2(WMEM > 1 ? WMEM : 2),
    parameter int TAW = $clog2(MH / PE > 1 ? MH / PE : 2)
) (
    input  logic                          ap_clk,
    input  logic                          ap_rst_n,

    input  logic [SIMD*IN_W-1:0]          in_tdata,
    input  logic                          in_tvalid,
    output logic                          in_tready,

    output logic [PE*OUT_W-1:0]           out_tdata,
    output logic                          out_tvalid,
    input  logic                          out_tready,

    // weight ROM read port: w_data = ROM[w_addr] one cycle after w_en
    output logic                          w_en,
    output logic [WAW-1:0]                w_addr,
    input  logic [PE*SIMD-1:0]            w_data,

    // threshold (NO_ACT = 0) or accumulator start (NO_ACT = 1) ROM read port: t_data =
    // ROM[t_addr] one cycle after t_en
    output logic                          t_en,
    output logic [TAW-1:0]                t_addr,
    input  logic [PE*NSTEPS*THR_W-1:0]    t_data
);
    localparam int SF = MW / SIMD;
    localparam int NF = MH / PE;
    localparam int SFW = $clog2(SF > 1 ? SF : 2);
    localparam int NFW = $clog2(NF > 1 ? NF : 2);
    // largest input magnitude, and the accumulator width it implies
    localparam int MAG = IN_SIGNED ? (1 << (IN_W - 1)) : ((1 << IN_W) - 1);
    localparam int ACC_W = $clog2(MW * MAG + 1) + 1;
    // the masked sums' width (mvu_masked_sum's OUT_W): chunks of CW lanes, VW bits per chunk
    localparam int CW = SIMD < CHUNK ? SIMD : CHUNK;
    localparam int NCH = (SIMD + CW - 1) / CW;
    localparam int SUM_W = $clog2(CW * MAG + 1) + (IN_SIGNED ? 1 : 0) + $clog2(NCH);
    localparam int CMP_W = ACC_W > THR_W ? ACC_W : THR_W;
    localparam int CNT_W = $clog2(NSTEPS) + 1;
    // sideband down each PE's adder tree: valid, first and last fold, and (NO_ACT) the start value
    localparam int START_W = NO_ACT ? ACC_W : 1;
    // cycles from issuing a fold to its beat in the FIFO (see the stages below)
    localparam int TREE_LAT = 1 + ($clog2(NCH) + REG_EVERY - 1) / REG_EVERY;
    localparam int CNT_LAT = ($clog2(NSTEPS) + REG_EVERY - 1) / REG_EVERY;
    localparam int LATENCY = 4 + TREE_LAT + (NO_ACT ? 0 : 1 + CNT_LAT);
    localparam int FIFO_DEPTH = 1 << $clog2(LATENCY + 1);
    localparam int PW = $clog2(FIFO_DEPTH) + 1;

    // ---- issue: one (nf, sf) fold per cycle ---------------------------------------------
    logic [SFW-1:0] sf;
    logic [NFW-1:0] nf;
    logic [WAW-1:0] waddr;
    logic [PW-1:0] pending;  // output beats issued and not yet taken by the sink

    wire read_in = (nf == '0);             // first neuron fold: the vector comes from the stream
    wire last_sf = (sf == SFW'(SF - 1));
    wire last_nf = (nf == NFW'(NF - 1));
    wire credit = !last_sf || (pending < PW'(FIFO_DEPTH));
    wire issue = credit && (!read_in || in_tvalid);
    wire out_take = out_tvalid && out_tready;

    assign in_tready = read_in && credit;

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) begin
            sf <= '0;
            nf <= '0;
            waddr <= '0;
            pending <= '0;
        end else begin
            if (issue) begin
                sf <= last_sf ? '0 : sf + 1'b1;
                if (last_sf) nf <= last_nf ? '0 : nf + 1'b1;
                waddr <= (waddr == WAW'(WMEM - 1)) ? '0 : waddr + 1'b1;
            end
            pending <= pending + PW'(issue && last_sf) - PW'(out_take);
        end
    end

    assign w_en = issue;
    assign w_addr = waddr;

    // ---- stage 1: input fold (stream or replay buffer) next to its weights ---------------
    logic [SIMD*IN_W-1:0] x_s1;
    logic v_s1, first_s1, last_s1;

    if (NF > 1) begin : g_replay
        (* ram_style = "distributed" *) logic [SIMD*IN_W-1:0] buffer [SF];
        always_ff @(posedge ap_clk) begin
            if (issue && read_in) buffer[sf] <= in_tdata;
            if (issue) x_s1 <= read_in ? in_tdata : buffer[sf];
        end
    end else begin : g_stream_only
        always_ff @(posedge ap_clk) begin
            if (issue) x_s1 <= in_tdata;
        end
    end

    always_ff @(posedge ap_clk) begin
        if (!ap_rst_n) v_s1 <= 1'b0;
        else v_s1 <= issue;
        first_s1 <= (sf == '0);
        last_s1 <= last_sf;
    end

    // ---- stage 2: the PEs' sums over SIMD (pipelined), tags riding along -----------------
    // the fold as bit planes (a wiring permutation): bit k of lane i at k*SIMD + i
    logic [IN_W*SIMD-1:0] planes_s1;
    for (genvar k = 0; k < IN_W; k++) begin : g_plane
        for (genvar i = 0; i < SIMD; i++) begin : g_bit
            assign planes_s1[k*SIMD + i] = x_s1[i*IN_W + k];
        end
    end

    logic [SUM_W-1:0] xsum [PE];
    logic [ACC_W-1:0] start_t [PE];  // what each accumulator starts from at a first fold
    logic v_t, first_t, last_t;

    for (genvar p = 0; p < PE; p++) begin : g_pe_tree
        // the start value read for this fold (NO_ACT), or a constant 0 the synthesis removes
        logic [START_W-1:0] start_s1;
        if (NO_ACT) begin : g_start
            if (THR_W == ACC_W) begin : g_full
                assign start_s1 = t_data[p*THR_W +: THR_W];
            end else begin : g_sext  // the generator keeps THR_W <= ACC_W
                assign start_s1 = ACC_W'($signed(t_data[p*THR_W +: THR_W]));
            end
        end else begin : g_zero
            assign start_s1 = '0;
        end
        // every PE's tree carries the control tags; PE 0's are used (the others are removed)
        /* verilator lint_off UNUSEDSIGNAL */
        logic [2:0] ctl;
        logic [START_W-1:0] start;
        /* verilator lint_on UNUSEDSIGNAL */
        mvu_masked_sum #(
            .N(SIMD), .IN_W(IN_W), .SIGNED(IN_SIGNED), .CHUNK(CHUNK), .REG_EVERY(REG_EVERY),
            .TAG_W(3 + START_W), .XNOR(1'b1)
        ) u_xsum (
            .clk(ap_clk), .rst_n(ap_rst_n), .in_planes(planes_s1), .in_mask(w_data[p*SIMD +: SIMD]),
            .in_tag({start_s1, v_s1, first_s1, last_s1}), .out_sum(xsum[p]), .out_tag({start, ctl})
        );
        assign start_t[p] = NO_ACT ? ACC_W'(start) : '0;
    end
    assign {v_t, first_t, last_t} = g_pe_tree[0].ctl;

    // ---- stage 3: accumulate over the SF input folds -------------------------------------
    function automatic logic [ACC_W-1:0] widen(input logic [SUM_W-1:0] s);
        // sign- or zero-extend a masked sum to the accumulator, or keep its low ACC_W bits
        // (a sum of at most MW lanes fits ACC_W bits, however wide its chunked form)
        if (IN_SIGNED) return ACC_W'($signed(s));
        else return ACC_W'(s);
    endfunction

    logic [ACC_W-1:0] acc [PE];  // start value + xsum over the folds so far
    logic acc_v;

    always_ff @(posedge ap_clk) begin
        if (v_t) begin
            for (int p = 0; p < PE; p++) acc[p] <= (first_t ? start_t[p] : acc[p]) + widen(xsum[p]);
        end
        if (!ap_rst_n) acc_v <= 1'b0;
        else acc_v <= v_t && last_t;
    end

    // ---- stage 4: the finished sums, held while the threshold word is read ----------------
    logic [ACC_W-1:0] dot [PE];
    logic dot_v;

    always_ff @(posedge ap_clk) begin
        for (int p = 0; p < PE; p++) dot[p] <= acc[p];
        if (!ap_rst_n) dot_v <= 1'b0;
        else dot_v <= acc_v;
    end

    // ---- stage 5: activation (or none), then the output FIFO ------------------------------
    logic [PE*OUT_W-1:0] result;
    logic result_v;

    if (NO_ACT) begin : g_no_act
        // the start values of neuron fold nf are read as its first input fold is issued, and
        // arrive beside that fold (stage 1)
        assign t_en = issue && (sf == '0);
        assign t_addr = TAW'(nf);
        for (genvar p = 0; p < PE; p++) begin : g_out
            if (OUT_W > ACC_W) begin : g_sext
                assign result[p*OUT_W +: OUT_W] = {{(OUT_W - ACC_W){dot[p][ACC_W-1]}}, dot[p]};
            end else begin : g_low
                assign result[p*OUT_W +: OUT_W] = dot[p][OUT_W-1:0];
            end
        end
        assign result_v = dot_v;
    end else begin : g_act
        // the threshold word for neuron fold nf is read while its accumulators settle, so it
        // arrives together with the sums
        logic [NFW-1:0] t_nf;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) t_nf <= '0;
            else if (acc_v) t_nf <= (t_nf == NFW'(NF - 1)) ? '0 : t_nf + 1'b1;
        end
        assign t_en = acc_v;
        assign t_addr = TAW'(t_nf);

        logic [NSTEPS-1:0] above [PE];  // bit k: T[k] <= acc
        // one generate block per PE: a procedural loop over PE x NSTEPS (16 x 255 for an 8-bit
        // output) would pass yosys-slang's unroll limit of 4000
        for (genvar p = 0; p < PE; p++) begin : g_cmp
            always_ff @(posedge ap_clk)
                for (int k = 0; k < NSTEPS; k++)
                    above[p][k] <= $signed(CMP_W'($signed(dot[p])))
                                   >= $signed(CMP_W'($signed(t_data[(p*NSTEPS + k)*THR_W +: THR_W])));
        end
        logic cmp_v;
        always_ff @(posedge ap_clk) begin
            if (!ap_rst_n) cmp_v <= 1'b0;
            else cmp_v <= dot_v;
        end

        // count the thresholds passed: a pipelined popcount, the valid flag on its tag
        /* verilator lint_off UNUSEDSIGNAL */  // all PEs' flags are equal; PE 0's is used
        logic [PE-1:0] count_v;
        /* verilator lint_on UNUSEDSIGNAL */
        for (genvar p = 0; p < PE; p++) begin : g_count
            /* verilator lint_off UNUSEDSIGNAL */  // bits above OUT_W: the sum wraps, see below
            logic [CNT_W-1:0] count;
            /* verilator lint_on UNUSEDSIGNAL */
            mvu_add_tree #(
                .N(NSTEPS), .IN_W(1), .SIGNED(1'b0), .REG_EVERY(REG_EVERY), .TAG_W(1)
            ) u_popcount (
                .clk(ap_clk), .rst_n(ap_rst_n), .in_data(above[p]), .in_tag(cmp_v),
                .out_sum(count), .out_tag(count_v[p])
            );
            // out = ACT_VAL + count, modulo 2^OUT_W (the generator checks it fits OUT_W)
            assign result[p*OUT_W +: OUT_W] = OUT_W'(ACT_VAL) + OUT_W'(count);
        end
        assign result_v = count_v[0];
    end

    mvu_fifo #(.WIDTH(PE * OUT_W), .DEPTH(FIFO_DEPTH)) u_out (
        .clk(ap_clk), .rst_n(ap_rst_n), .wr_en(result_v), .wr_data(result),
        .out_valid(out_tvalid), .out_data(out_tdata), .out_ready(out_tready)
    );
endmodule
