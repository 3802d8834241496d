"""LabelSelect_rtl: FINN's LabelSelect (top-K labels of the class scores, the accelerator's last
layer) in this project's RTL (hw/rtl/label_select.sv)."""

from __future__ import annotations

from pathlib import Path

from finn.custom_op.fpgadataflow.labelselect import LabelSelect
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw.custom_op.base import ProjectRTLBackend, generated_header
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module

# label_select inserts a beat's PE values into the sorted top-K list in one cycle: PE x K
# comparators in a chain of PE steps. Beyond this the one-cycle chain is no longer a sensible
# circuit (timing, area); such a node should fold to a smaller PE first.
MAX_COMPARATORS = 1024


@register
class LabelSelect_rtl(LabelSelect, ProjectRTLBackend):
    """Indices of the K largest values, largest first, lower label first among equal values."""

    LIBRARY_FILES = ("label_select.sv",)

    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """Why label_select cannot implement ``node`` (a LabelSelect or _hls node), or None."""
        if node.op_type not in ("LabelSelect", "LabelSelect_hls", "LabelSelect_rtl"):
            return f"{node.op_type} is not a LabelSelect node"
        op = getCustomOp(node)
        labels, pe, k = op.get_nodeattr("Labels"), op.get_nodeattr("PE"), op.get_nodeattr("K")
        if pe < 1 or labels % pe != 0:
            return f"PE={pe} does not divide Labels={labels}"
        if not 1 <= k <= labels:
            return f"K={k} is outside 1..Labels={labels}"
        if pe * k > MAX_COMPARATORS:
            return (f"PE x K = {pe * k} comparators in one cycle exceeds {MAX_COMPARATORS}; "
                    "use a smaller PE")
        idt, odt = op.get_input_datatype(), op.get_output_datatype()
        if not idt.is_integer():
            return f"input type {idt.name} is not an integer type"
        if idt == DataType["BIPOLAR"]:
            return "input type BIPOLAR (streamed as 0/1 bits) is not supported"
        if not odt.is_integer() or odt.min() > 0 or odt.max() < labels - 1:
            return f"output type {odt.name} cannot hold labels 0..{labels - 1}"
        return None

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        idt, odt = self.get_input_datatype(), self.get_output_datatype()
        labels, pe, k = self.get_nodeattr("Labels"), self.get_nodeattr("PE"), self.get_nodeattr("K")
        w_in, w_out = self.get_instream_width_padded(), self.get_outstream_width_padded()
        i_bits, o_bits = pe * idt.bitwidth(), odt.bitwidth()
        core = core_instance("label_select", {
            "LABELS": labels, "PE": pe, "K": k, "IN_WIDTH": idt.bitwidth(),
            "IN_SIGNED": int(idt.signed()), "OUT_WIDTH": o_bits,
        }, {
            "in_tdata": f"in0_V_TDATA[{i_bits - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
            "out_tdata": "label_tdata", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
        })
        header = generated_header(
            self, f"{top}: FINN-interface wrapper of label_select (top-{k} of {labels} {idt.name} values, "
                  f"PE {pe}, labels as {odt.name})"
        )
        body = (f"    wire [{o_bits - 1}:0] label_tdata;\n\n{core}\n\n"
                + tdata_output("out0_V_TDATA", w_out, o_bits, "label_tdata"))
        out_note = f"one label per beat, {k} beats per vector"
        text = wrapper_module(header, top, [(w_in, i_bits, "")], [(w_out, out_note)], body)
        (code_dir / f"{top}.v").write_text(text)
        return [f"{top}.v"]
