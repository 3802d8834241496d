"""MVAUBipolar_rtl: FINN's MVAU for bipolar (+-1) weights, as this project's RTL.

FINN's own RTL MVU (MVAU_rtl) is DSP-based and refuses 1-bit weights, so every binary-weight
layer would specialize to MVAU_hls and need Vitis HLS. This op keeps FINN's MVAU attributes,
shapes, data types and python execution (``MVAU``) and implements the node with the
hand-written library in ``hw/rtl`` (``mvu_bipolar`` and its parts) plus three generated files
per node: the weight ROM, the per-channel ROM (thresholds with an activation, the accumulators'
start values without) and the top wrapper with FINN's port names. ``unsupported_reason`` says why a
given MVAU node cannot be implemented this way.

The unit sums x where a weight is +1 and ~x where it is -1 (mvu_bipolar.sv), which is the dot
product plus C * N[c], N[c] the channel's number of -1 weights and C = 2^bits - 1 for unsigned
inputs, -1 for signed ones; ``xsum_offsets`` is that constant, folded into the thresholds, or
without an activation taken as the accumulator's start value (-C * N[c] instead of 0).

FINN's binaryXnorMode (W1A1: BINARY inputs u, weight bits w01, 1 meaning +1) is the same unit
at one input bit: x where w01 = 1, ~x = 1 - x where w01 = 0 is xnor(u, w01), so the xsum is
FINN's popcount itself; its 0/1 weights have no -1, so the offsets are 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.matrixvectoractivation import MVAU
from qonnx.core.datatype import DataType
from qonnx.util.basic import calculate_matvec_accumulator_range

from hw.custom_op.base import ROM_STYLES, ProjectRTLBackend, clog2, generated_header, rom_module
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module

MAX_INPUT_BITS = 8


def _signed_width(lo: int, hi: int) -> int:
    """Bits of the smallest two's complement type holding every integer in [lo, hi]."""
    bits = 1
    while lo < -(1 << (bits - 1)) or hi > (1 << (bits - 1)) - 1:
        bits += 1
    return bits


def input_magnitude(idt) -> int:
    """Largest |x| of the input type; the RTL derives its accumulator from the same number."""
    bits = idt.bitwidth()
    return (1 << (bits - 1)) if idt.signed() else (1 << bits) - 1


def accumulator_bound(mw: int, idt) -> int:
    """|acc| <= MW * max|x| for +-1 weights: the range mvu_bipolar sizes its accumulator for."""
    return mw * input_magnitude(idt)


def xsum_c(idt) -> int:
    """C in ~x = -x + C for the input type: 2^bits - 1 unsigned, -1 signed (two's complement)."""
    return -1 if idt.signed() else (1 << idt.bitwidth()) - 1


def xsum_offsets(weights: np.ndarray, idt) -> np.ndarray:
    """C * N[c] per output channel: what the unit's xsum exceeds the dot product by."""
    return xsum_c(idt) * (np.asarray(weights) < 0).sum(axis=0).astype(np.int64)


def xsum_range(mw: int, idt) -> tuple[int, int]:
    """The values an xsum can take: every lane (x or ~x) lies in the input type's range."""
    return mw * int(idt.min()), mw * int(idt.max())


def _as_bipolar(weights: np.ndarray | None) -> bool:
    return weights is not None and bool(np.isin(weights, (-1, 1)).all())


@register
class MVAUBipolar_rtl(MVAU, ProjectRTLBackend):
    """Matrix-vector(-activation) unit, bipolar weights, 1..8-bit inputs, in RTL (hw/rtl)."""

    LIBRARY_FILES = ("mvu_add_tree.sv", "mvu_masked_sum.sv", "mvu_fifo.sv", "mvu_bipolar.sv")
    REG_EVERY = 2  # adder-tree levels between pipeline registers (mvu_bipolar's REG_EVERY)
    CHUNK = 32  # lanes per population count (mvu_bipolar's CHUNK): the longest combinational path

    # FINN's MVAU comes first in the MRO and defines these for its HLS/decoupled variants;
    # this op's backend is the project's RTL mixin.
    def execute_node(self, context, graph):
        return ProjectRTLBackend.execute_node(self, context, graph)

    def code_generation_ipi(self):
        return ProjectRTLBackend.code_generation_ipi(self)

    def get_instream_width(self, ind=0):
        # weights and thresholds are ROMs inside the layer, never streams
        return 0 if ind in (1, 2) else super().get_instream_width(ind)

    def get_verilog_top_module_intf_names(self):
        intf = super().get_verilog_top_module_intf_names()
        intf["s_axis"] = [("in0_V", self.get_instream_width_padded(0))]
        intf["axilite"], intf["aximm"], intf["ap_none"] = [], [], []
        intf.pop("clk2x", None)
        return intf

    # -- what this RTL can implement ---------------------------------------------------------
    @classmethod
    def unsupported_reason(cls, model, node) -> str | None:
        """One line saying why this RTL cannot implement the MVAU ``node``, or None if it can."""
        from qonnx.custom_op.registry import getCustomOp

        if not node.op_type.startswith("MVAU"):
            return f"{node.op_type} is not an MVAU"
        op = getCustomOp(node)
        a = op.get_nodeattr
        mw, mh, pe, simd = a("MW"), a("MH"), a("PE"), a("SIMD")
        xnor = bool(a("binaryXnorMode"))
        if a("mem_mode") not in ("internal_embedded", "internal_decoupled"):
            return f"weights are streamed (mem_mode {a('mem_mode')}); this RTL needs constant weights"
        if a("runtime_writeable_weights"):
            return "runtime_writeable_weights=1: this RTL holds the weights in a ROM"
        if a("ram_style") not in ROM_STYLES | {"auto"}:
            return f"ram_style {a('ram_style')} cannot hold an initialised ROM"
        if a("TH") != 1 or a("pumpedMemory"):
            return "tiling (TH > 1) and pumped memory are not implemented"
        if pe < 1 or simd < 1 or mh % pe or mw % simd:
            return f"folding PE={pe}, SIMD={simd} does not divide MH={mh}, MW={mw}"
        weights = model.get_initializer(node.input[1])
        idt = DataType[a("inputDataType")]
        if xnor:  # FINN's xnor-popcount: bits in, weight bits (1 = +1), output popcount(xnor)
            if idt != DataType["BINARY"] or weights is None or not np.isin(weights, (0, 1)).all():
                return f"binaryXnorMode=1 needs BINARY inputs and 0/1 weights (got {idt.name}, {a('weightDataType')})"
        elif not _as_bipolar(weights):
            what = "missing" if weights is None else f"{a('weightDataType')}, not all +-1"
            return f"weights are not bipolar ({what})"
        if idt == DataType["BIPOLAR"] or not idt.is_integer():
            return f"input type {idt.name} is not a plain integer type (bipolar inputs take FINN's xnor path)"
        if idt.bitwidth() > MAX_INPUT_BITS:
            return f"input type {idt.name} is wider than {MAX_INPUT_BITS} bits"
        odt = DataType[a("outputDataType")]
        if a("noActivation"):
            if not odt.is_integer() or odt == DataType["BIPOLAR"]:
                return f"output type {odt.name} cannot hold an accumulator"
            lo, hi = calculate_matvec_accumulator_range(weights, idt)
            if lo < odt.min() or hi > odt.max():
                return f"accumulator range [{lo}, {hi}] does not fit the output type {odt.name}"
            return None
        if len(node.input) < 3 or model.get_initializer(node.input[2]) is None:
            return "noActivation=0 but the thresholds are not an initializer"
        thr = model.get_initializer(node.input[2])
        if thr.ndim != 2 or thr.shape[0] not in (1, mh):
            return f"thresholds of shape {thr.shape}, expected (1 or MH={mh}, steps)"
        if np.isnan(thr).any():
            return "thresholds contain NaN"
        steps = thr.shape[1]
        if odt == DataType["BIPOLAR"]:
            return None if steps == 1 else f"a bipolar output needs 1 threshold per channel, not {steps}"
        if not odt.is_integer() or odt.bitwidth() > 32:
            return f"output type {odt.name} is not an integer type of at most 32 bits"
        if a("ActVal") < odt.min() or a("ActVal") + steps > odt.max():
            return f"ActVal {a('ActVal')} + 0..{steps} thresholds does not fit the output type {odt.name}"
        return None

    # -- code generation ---------------------------------------------------------------------
    def _params(self, model) -> dict:
        a = self.get_nodeattr
        idt, odt = self.get_input_datatype(0), self.get_output_datatype()
        p = dict(
            MW=a("MW"), MH=a("MH"), PE=a("PE"), SIMD=a("SIMD"), IN_W=idt.bitwidth(),
            IN_SIGNED=int(idt.signed()), OUT_W=odt.bitwidth(), NO_ACT=a("noActivation"),
            NSTEPS=1, THR_W=1, ACT_VAL=0, REG_EVERY=self.REG_EVERY, CHUNK=self.CHUNK,
        )
        table = self.rom_channel_table(model)
        p["NSTEPS"] = table.shape[1]
        p["THR_W"] = _signed_width(int(table.min()), int(table.max()))
        if not p["NO_ACT"]:
            # a bipolar output is the 0/1 count itself on the stream (-1 -> 0)
            p["ACT_VAL"] = 0 if odt == DataType["BIPOLAR"] else a("ActVal")
        return p

    def rom_channel_table(self, model) -> np.ndarray:
        """What the per-channel ROM holds: the thresholds (activation) or the start values (MH, 1)."""
        if self.get_nodeattr("noActivation"):
            return -self.rom_offsets(model)[:, None]
        return self.rom_thresholds(model)

    def rom_offsets(self, model) -> np.ndarray:
        """(MH,) integers C * N[c] by which the unit's xsums exceed the dot products; each lies
        in the accumulator's range, so its negation (a start value) takes no more bits than it."""
        return xsum_offsets(model.get_initializer(self.onnx_node.input[1]), self.get_input_datatype(0))

    def rom_thresholds(self, model) -> np.ndarray:
        """Thresholds as the RTL compares them with its xsums: (MH, steps) integers. acc is an
        integer, so acc >= t equals acc >= ceil(t), which equals xsum >= ceil(t) + C * N[c];
        and thresholds beyond the xsum's reach are clipped to just outside it (same outcome
        for every reachable xsum, fewer bits)."""
        thr = model.get_initializer(self.onnx_node.input[2]).astype(np.float64)
        mh = self.get_nodeattr("MH")
        if thr.shape[0] == 1:
            thr = np.tile(thr, (mh, 1))
        # clip before the shift too, so that a float threshold far out cannot overflow int64
        bound = accumulator_bound(self.get_nodeattr("MW"), self.get_input_datatype(0))
        thr = np.clip(np.ceil(thr), -bound, bound + 1).astype(np.int64) + self.rom_offsets(model)[:, None]
        lo, hi = xsum_range(self.get_nodeattr("MW"), self.get_input_datatype(0))
        return np.clip(thr, lo, hi + 1)

    def rom_weights(self, model) -> np.ndarray:
        """(WMEM, PE*SIMD) bits, word nf*SF+sf, bit p*SIMD+i = 1 where W[sf*SIMD+i, nf*PE+p] = +1."""
        w = model.get_initializer(self.onnx_node.input[1])
        mw, mh, pe, simd = (self.get_nodeattr(k) for k in ("MW", "MH", "PE", "SIMD"))
        sf, nf = mw // simd, mh // pe
        bits = (w > 0).astype(np.uint8).reshape(sf, simd, nf, pe)  # [sf, i, nf, p]
        return bits.transpose(2, 0, 3, 1).reshape(nf * sf, pe * simd)

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        p = self._params(model)
        code_dir = Path(code_dir)
        files = {f"{top}_weights.sv": self._weights_rom(model, top, p),
                 f"{top}_{self._channel_rom_name(p)}.sv": self._channel_rom(model, top, p)}
        files[f"{top}.v"] = self._wrapper(top, p)
        for name, text in files.items():
            (code_dir / name).write_text(text)
        return list(files)

    def _weights_rom(self, model, top: str, p: dict) -> str:
        words = self.rom_weights(model)
        depth, width = words.shape
        sf = p["MW"] // p["SIMD"]
        digits = (width + 3) // 4
        lines = []
        for addr, word in enumerate(words):
            value = int("".join(map(str, word[::-1])), 2)
            lines.append(f"        rom[{addr}] = {width}'h{value:0{digits}x};  // nf {addr // sf}, sf {addr % sf}")
        style = self.get_nodeattr("ram_style")
        return generated_header(self, f"{top}_weights: weight ROM of {top} ({depth} x {width} bits)") + f"""//
// Word nf*SF+sf, bit p*SIMD+i: 1 where weight[sf*SIMD+i][nf*PE+p] = +1, 0 where it is -1.
// ram_style={style}: {"rom_style " + style if style in ROM_STYLES else "no rom_style attribute (the tool decides)"}.
""" + rom_module(f"{top}_weights", width, depth, lines, style)

    @staticmethod
    def _channel_rom_name(p: dict) -> str:
        return "starts" if p["NO_ACT"] else "thresholds"

    def _channel_rom(self, model, top: str, p: dict) -> str:
        """The ROM on mvu_bipolar's threshold port: NF words of PE channels' thresholds or start values."""
        thr = self.rom_channel_table(model)
        kind = self._channel_rom_name(p)
        pe, tw, steps = p["PE"], p["THR_W"], p["NSTEPS"]
        nf = p["MH"] // pe
        width = pe * steps * tw
        aw = clog2(max(nf, 2))
        digits = (width + 3) // 4
        mask = (1 << tw) - 1

        def word(rows: np.ndarray) -> int:  # rows: (PE, steps), element (p, k) at (p*steps+k)*tw
            v = 0
            for idx, t in enumerate(rows.reshape(-1)):
                v |= (int(t) & mask) << (idx * tw)
            return v

        what = "accumulator start" if p["NO_ACT"] else "threshold"
        c = xsum_c(self.get_input_datatype(0))
        head = generated_header(self, f"{top}_{kind}: {what} ROM of {top} ({nf} x {width} bits)")
        if p["NO_ACT"]:
            layout = (
                f"//\n// Word nf holds channel nf*PE+p's accumulator start -C * N (C = {c}, N its number\n"
                f"// of -1 weights), {tw}-bit two's complement, in bits [p*{tw} +: {tw}]: the accumulator\n"
                f"// then ends at the dot product (it sums x where a weight is +1, ~x = -x + C where -1).\n"
            )
        else:
            layout = (
                f"//\n// Word nf holds channel nf*PE+p's {steps} thresholds, {tw}-bit two's complement, element\n"
                f"// (p, k) in bits [(p*{steps}+k)*{tw} +: {tw}]; output = ActVal + #(thresholds <= xsum).\n"
                f"// Thresholds were rounded up to integers, raised by the channel's offset C * N\n"
                f"// (C = {c}, N its number of -1 weights) and clipped to the xsum's reach.\n"
            )
        if (thr == thr[0]).all():  # every channel has the same values: a constant, no memory
            return head + layout + f"""// All channels have the same {kind}: {' '.join(map(str, thr[0]))}
// so the "ROM" is a constant (clock, enable and address unused).

module {top}_{kind} (
    /* verilator lint_off UNUSEDSIGNAL */
    input clk,
    input en,
    input [{aw - 1}:0] addr,
    /* verilator lint_on UNUSEDSIGNAL */
    output [{width - 1}:0] data
);
    assign data = {width}'h{word(np.tile(thr[0], (pe, 1))):0{digits}x};
endmodule
"""
        lines = []
        for f in range(nf):
            rows = thr[f * pe:(f + 1) * pe]
            for q in range(pe):
                lines.append(f"        // channel {f * pe + q}: {' '.join(map(str, rows[q]))}")
            lines.append(f"        rom[{f}] = {width}'h{word(rows):0{digits}x};")
        style = self.get_nodeattr("ram_style_thresholds")
        return head + layout + f"// ram_style_thresholds={style}.\n" + rom_module(
            f"{top}_{kind}", width, nf, lines, style)

    def _wrapper(self, top: str, p: dict) -> str:
        in_w, out_w = p["SIMD"] * p["IN_W"], p["PE"] * p["OUT_W"]
        in_pad, out_pad = self.get_instream_width_padded(0), self.get_outstream_width_padded(0)
        wmem = (p["MW"] // p["SIMD"]) * (p["MH"] // p["PE"])
        waw, taw = clog2(max(wmem, 2)), clog2(max(p["MH"] // p["PE"], 2))
        core = core_instance("mvu_bipolar", p, {
            "in_tdata": f"in0_V_TDATA[{in_w - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
            "out_tdata": "out_data", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
            "w_en": "w_en", "w_addr": "w_addr", "w_data": "w_data",
            "t_en": "t_en", "t_addr": "t_addr", "t_data": "t_data",
        })
        t_width = p["PE"] * p["NSTEPS"] * p["THR_W"]
        t_wires = f"    wire t_en;\n    wire [{taw - 1}:0] t_addr;\n"
        kind = self._channel_rom_name(p)
        thr_inst = f"    {top}_{kind} {kind} (.clk(ap_clk), .en(t_en), .addr(t_addr), .data(t_data));\n"
        header = generated_header(self, f"{top}: top of {self.onnx_node.name}, FINN stream ports") + f"""//
// Bipolar-weight MVAU: mvu_bipolar (hw/rtl), this node's weight and {kind[:-1].replace("start", "start value")} ROMs.
// in0_V: {p["SIMD"]} x {self.get_input_datatype(0).name} per beat, {p["MW"] // p["SIMD"]} beats per vector;
// out0_V: {p["PE"]} x {self.get_output_datatype().name} per beat, {p["MH"] // p["PE"]} beats per vector.

"""
        body = f"""    wire w_en;
    wire [{waw - 1}:0] w_addr;
    wire [{p["PE"] * p["SIMD"] - 1}:0] w_data;
{t_wires}    wire [{t_width - 1}:0] t_data;
    wire [{out_w - 1}:0] out_data;

    {top}_weights weights (.clk(ap_clk), .en(w_en), .addr(w_addr), .data(w_data));
{thr_inst}
{core}

{tdata_output("out0_V_TDATA", out_pad, out_w, "out_data")}
"""
        return wrapper_module(header, top, [(in_pad, in_w, "")], [(out_pad, "")], body)
