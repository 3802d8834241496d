"""GlobalAccPool_rtl: FINN's GlobalAccPool (per-channel sum over an image's pixels, the integer
part of global average pooling) in this project's RTL (hw/rtl/global_acc_pool.sv)."""

from __future__ import annotations

from pathlib import Path

from finn.custom_op.fpgadataflow.globalaccpool import GlobalAccPool
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw.custom_op.base import ProjectRTLBackend, generated_header
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module


def acc_bits(idt, pixels: int) -> int:
    """Bits that hold every sum of ``pixels`` values of ``idt`` (signed iff idt is)."""
    lo, hi = pixels * int(idt.min()), pixels * int(idt.max())
    if idt.signed():
        return max(max(-lo - 1, hi).bit_length() + 1, 2)
    return max(hi.bit_length(), 1)


@register
class GlobalAccPool_rtl(GlobalAccPool, ProjectRTLBackend):
    """Sum over H x W per channel, PE channels per beat, one output vector per image."""

    LIBRARY_FILES = ("global_acc_pool.sv",)

    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """Why global_acc_pool cannot implement ``node`` (a GlobalAccPool or _hls node), or None."""
        if node.op_type not in ("GlobalAccPool", "GlobalAccPool_hls", "GlobalAccPool_rtl"):
            return f"{node.op_type} is not a GlobalAccPool node"
        op = getCustomOp(node)
        vecs = list(op.get_nodeattr("numInputVectors"))
        if len(vecs) != 3:
            # FINN's own output type and execution assume (N, H, W) vectors
            return f"numInputVectors={vecs} is not (images, height, width)"
        ch, pe = op.get_nodeattr("NumChannels"), op.get_nodeattr("PE")
        if pe < 1 or ch % pe != 0:
            return f"PE={pe} does not divide NumChannels={ch}"
        idt = op.get_input_datatype()
        if not idt.is_integer():
            return f"input type {idt.name} is not an integer type"
        if idt == DataType["BIPOLAR"]:
            return "input type BIPOLAR (streamed as 0/1 bits) is not supported"
        odt = op.get_output_datatype()
        need = acc_bits(idt, vecs[1] * vecs[2])
        if odt.signed() != idt.signed() or odt.bitwidth() < need:
            return f"output type {odt.name} does not hold a {need}-bit sum of {idt.name}"
        return None

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        pe, ch = self.get_nodeattr("PE"), self.get_nodeattr("NumChannels")
        _, h, w = self.get_nodeattr("numInputVectors")
        # exactly the bits the sums need: FINN's output type is already the smallest one that
        # holds them (checked in unsupported_reason), and the stream carries that type
        acc = odt.bitwidth()
        w_in, w_out = self.get_instream_width_padded(), self.get_outstream_width_padded()
        i_bits, o_bits = pe * idt.bitwidth(), pe * acc
        core = core_instance("global_acc_pool", {
            "PE": pe, "CHANNELS": ch, "PIXELS": h * w, "IN_WIDTH": idt.bitwidth(),
            "IN_SIGNED": int(idt.signed()), "ACC_WIDTH": acc,
        }, {
            "in_tdata": f"in0_V_TDATA[{i_bits - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
            "out_tdata": "sum_tdata", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
        })
        header = generated_header(
            self, f"{top}: FINN-interface wrapper of global_acc_pool ({h}x{w} pixels, {ch} channels, "
                  f"{idt.name} -> {odt.name}, PE {pe})"
        )
        body = (f"    wire [{o_bits - 1}:0] sum_tdata;\n\n{core}\n\n"
                + tdata_output("out0_V_TDATA", w_out, o_bits, "sum_tdata"))
        text = wrapper_module(header, top, [(w_in, i_bits, "")], [(w_out, "")], body)
        (code_dir / f"{top}.v").write_text(text)
        return [f"{top}.v"]

