"""ThresholdTable_rtl: FINN's Thresholding as a table lookup in block RAM (hw/rtl/threshold_table.sv).

FINN's Thresholding_rtl compares an input with a channel's thresholds by a binary search in
pipelined comparator stages. Where the input type is narrow, the output is a function of
(channel, input) over a small domain: this op tabulates it, ACT_VAL + #{k : T[c][k] <= x} for
every x of the input type, and reads the table instead (one block RAM read per element, no
comparator). It pays where there are many thresholds (an 8-bit requantization: 255) and few
input values: WRN's residual stream after its adds (9-13 bits). ``unsupported_reason`` keeps
FINN's layer elsewhere: few thresholds (its comparators are cheap) or a table over
``MAX_TABLE_BRAM36`` per lane.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.thresholding import Thresholding
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw.block_ram import bram36
from hw.custom_op.base import ProjectRTLBackend, clog2, generated_header, rom_module
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module

MIN_STEPS = 16  # fewer thresholds (outputs of up to 4 bits): FINN's comparators cost less than a table
MAX_TABLE_BRAM36 = 2.0  # per lane: 8K words of 8 bits (a 13-bit input, one channel fold)
# LUTs with the tables in block RAM (yosys: PE 4 x 8 bits 50, PE 3 x 8 41, PE 2 x 8 36-39): the
# credit and fold counters, and the output FIFO in LUT RAM, which grows with the beat
TABLE_LUTS = 25
TABLE_LUTS_PER_OUT_BIT = 0.75


def table_shape(folds: int, in_bits: int, out_bits: int) -> tuple[int, int]:
    """(words, bits per word) of one lane's table: a word per (channel fold, input value); one
    fold when every channel has the same thresholds."""
    return folds * (1 << in_bits), out_bits


def table_bram36(folds: int, pe: int, in_bits: int, out_bits: int) -> float:
    """BRAM36 of the layer's tables: one per lane."""
    return pe * bram36(*table_shape(folds, in_bits, out_bits))


def shared_thresholds(thr: np.ndarray) -> bool:
    """Every channel has the same thresholds (FINN's (1, steps) form, or equal rows)."""
    return thr.shape[0] == 1 or bool((thr == thr[0]).all())


def table_luts(pe: int, out_bits: int) -> int:
    """LUTs of the layer, its tables in block RAM."""
    return round(TABLE_LUTS + TABLE_LUTS_PER_OUT_BIT * pe * out_bits)


def table_folds(model, node) -> int:
    """Channel folds a lane's table of the Thresholding ``node`` holds: NumChannels / PE, or 1
    when every channel has the same thresholds."""
    op = getCustomOp(node)
    if shared_thresholds(model.get_initializer(node.input[1])):
        return 1
    return op.get_nodeattr("NumChannels") // op.get_nodeattr("PE")


@register
class ThresholdTable_rtl(Thresholding, ProjectRTLBackend):
    """Multi-threshold activation by table lookup, PE channels per beat, tables in block RAM."""

    LIBRARY_FILES = ("mvu_fifo.sv", "threshold_table.sv")

    def execute_node(self, context, graph):
        return ProjectRTLBackend.execute_node(self, context, graph)

    def code_generation_ipi(self):
        return ProjectRTLBackend.code_generation_ipi(self)

    def get_instream_width(self, ind=0):
        # the thresholds are tabulated inside the layer, never streamed
        return 0 if ind == 1 else super().get_instream_width(ind)

    def get_verilog_top_module_intf_names(self):
        intf = super().get_verilog_top_module_intf_names()
        intf["s_axis"] = [("in0_V", self.get_instream_width_padded(0))]
        intf["axilite"], intf["aximm"], intf["ap_none"] = [], [], []
        return intf

    def table_folds(self, model) -> int:
        return table_folds(model, self.onnx_node)

    def bram_estimation(self, fpgapart: str = "") -> int:
        # FINN's estimate API passes no model, so no thresholds: the worst case, a table per
        # channel fold (flows.folding counts the tables with table_folds)
        a = self.get_nodeattr
        folds = a("NumChannels") // a("PE")
        return int(round(2 * table_bram36(folds, a("PE"), self.get_input_datatype(0).bitwidth(),
                                          self.get_output_datatype().bitwidth())))

    def lut_estimation(self, fpgapart: str = "") -> int:
        return table_luts(self.get_nodeattr("PE"), self.get_output_datatype().bitwidth())

    # -- what this RTL can implement ---------------------------------------------------------
    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """One line saying why a table cannot (or should not) implement ``node``, or None."""
        if not node.op_type.startswith("Thresholding") and node.op_type != "ThresholdTable_rtl":
            return f"{node.op_type} is not a Thresholding node"
        op = getCustomOp(node)
        a = op.get_nodeattr
        if a("runtime_writeable_weights"):
            return "runtime_writeable_weights=1: the table is fixed when the RTL is generated"
        thr = None if model is None else model.get_initializer(node.input[1])
        if thr is None:
            return "the thresholds are not an initializer"
        ch, pe = a("NumChannels"), a("PE")
        if pe < 1 or ch % pe:
            return f"PE={pe} does not divide NumChannels={ch}"
        if thr.ndim != 2 or thr.shape[0] not in (1, ch):
            return f"thresholds of shape {thr.shape}, expected (1 or NumChannels={ch}, steps)"
        if np.isnan(thr).any():
            return "thresholds contain NaN"
        idt, odt = DataType[a("inputDataType")], DataType[a("outputDataType")]
        if not idt.is_integer() or idt == DataType["BIPOLAR"]:
            return f"input type {idt.name} is not a plain integer type"
        if not odt.is_integer() or odt == DataType["BIPOLAR"]:
            return f"output type {odt.name} is not a plain integer type"
        steps = thr.shape[1]
        if a("ActVal") < odt.min() or a("ActVal") + steps > odt.max():
            return f"ActVal {a('ActVal')} + 0..{steps} thresholds does not fit the output type {odt.name}"
        if steps < MIN_STEPS:
            return f"{steps} thresholds per channel: comparators cost less than a table"
        folds = table_folds(model, node)
        per_lane = table_bram36(folds, 1, idt.bitwidth(), odt.bitwidth())
        if per_lane > MAX_TABLE_BRAM36:
            words, bits = table_shape(folds, idt.bitwidth(), odt.bitwidth())
            return (f"a table of {words} x {bits} bits per lane ({idt.name} input) takes {per_lane:g} BRAM36, "
                    f"over {MAX_TABLE_BRAM36:g} BRAM36")
        return None

    # -- code generation ---------------------------------------------------------------------
    def tables(self, model) -> np.ndarray:
        """(PE, folds * 2^in_bits) outputs, two's complement in the output's bits: lane p's word
        nf * 2^in_bits + (x - min x) = ActVal + #{k : T[nf*PE+p][k] <= x} (folds = 1, every
        lane's table the same, with shared thresholds)."""
        a = self.get_nodeattr
        idt, odt = self.get_input_datatype(0), self.get_output_datatype()
        pe = a("PE")
        thr = np.sort(model.get_initializer(self.onnx_node.input[1]).astype(np.float64), axis=1)
        folds = self.table_folds(model)
        thr = np.broadcast_to(thr[:1], (folds * pe, thr.shape[1])) if shared_thresholds(thr) else thr
        xs = np.arange(int(idt.min()), int(idt.max()) + 1, dtype=np.float64)
        # #{t <= x} in each sorted row (one searchsorted per channel)
        out = a("ActVal") + np.stack([np.searchsorted(row, xs, side="right") for row in thr])  # (ch, 2^bits)
        out = out.astype(np.int64) & ((1 << odt.bitwidth()) - 1)
        return out.reshape(folds, pe, -1).transpose(1, 0, 2).reshape(pe, -1)

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        a = self.get_nodeattr
        idt, odt = self.get_input_datatype(0), self.get_output_datatype()
        ch, pe = a("NumChannels"), a("PE")
        in_w, out_w = idt.bitwidth(), odt.bitwidth()
        nf = self.table_folds(model)  # the core's NF: folds its tables tell apart
        tables = self.tables(model)
        shared = bool((tables == tables[0]).all())
        files = {}
        names = []
        for p in range(1 if shared else pe):
            name = f"{top}_table" if shared else f"{top}_table_{p}"
            files[f"{name}.sv"] = self._table_rom(name, tables[p], p, shared, in_w)
            names.append(name)
        taw = (clog2(nf) if nf > 1 else 0) + in_w  # threshold_table's TAW: {nf, x - min x}
        insts = "\n".join(
            f"    {names[0 if shared else p]} table_{p} (.clk(ap_clk), .en(t_en), "
            f".addr(t_addr[{(p + 1) * taw - 1}:{p * taw}]), .data(t_data[{(p + 1) * out_w - 1}:{p * out_w}]));"
            for p in range(pe))
        core = core_instance("threshold_table", {
            "PE": pe, "NF": nf, "IN_W": in_w, "IN_SIGNED": int(idt.signed()), "OUT_W": out_w,
        }, {
            "in_tdata": f"in0_V_TDATA[{pe * in_w - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
            "out_tdata": "out_data", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
            "t_en": "t_en", "t_addr": "t_addr", "t_data": "t_data",
        })
        header = generated_header(self, f"{top}: top of {self.onnx_node.name}, FINN stream ports") + f"""//
// Multi-threshold by table lookup: threshold_table (hw/rtl) with
// {"one table shared by" if shared else "a table for each of"} the {pe} lanes.
// in0_V: {pe} x {idt.name} per beat; out0_V: {pe} x {odt.name} per beat, {ch // pe} beats per pixel.

"""
        body = f"""    wire t_en;
    wire [{pe * taw - 1}:0] t_addr;
    wire [{pe * out_w - 1}:0] t_data;
    wire [{pe * out_w - 1}:0] out_data;

{insts}

{core}

{tdata_output("out0_V_TDATA", self.get_outstream_width_padded(0), pe * out_w, "out_data")}
"""
        files[f"{top}.v"] = wrapper_module(header, top, [(self.get_instream_width_padded(0), pe * in_w, "")],
                                           [(self.get_outstream_width_padded(0), "")], body)
        for name, text in files.items():
            (Path(code_dir) / name).write_text(text)
        return list(files)

    def _table_rom(self, name: str, table: np.ndarray, lane: int, shared: bool, in_w: int) -> str:
        out_w = self.get_output_datatype().bitwidth()
        idt = self.get_input_datatype(0)
        digits = (out_w + 3) // 4
        size = 1 << in_w
        lines = [f"        rom[{addr}] = {out_w}'h{int(v):0{digits}x};"
                 + (f"  // fold {addr // size}, x = {int(idt.min())} .. {int(idt.max())}" if addr % size == 0 else "")
                 for addr, v in enumerate(table)]
        who = "every lane" if shared else f"lane {lane} (channels {lane}, {lane} + PE, ...)"
        head = generated_header(self, f"{name}: the output table of {who} ({len(table)} x {out_w} bits)")
        return head + f"""//
// Word nf * {size} + (x - ({int(idt.min())})) = ActVal + #(thresholds of channel nf*PE+lane <= x), the
// output's {out_w}-bit two's complement; in block RAM.
""" + rom_module(name, out_w, len(table), lines, "block")
