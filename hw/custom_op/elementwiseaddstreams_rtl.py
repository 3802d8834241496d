"""ElementwiseAddStreams_rtl: FINN's ElementwiseAdd with both operands streamed (the join at the
end of a residual block) in this project's RTL (hw/rtl/stream_add.sv).

FINN's own ElementwiseAdd_rtl is a floating-point/const-operand unit, hence another name."""

from __future__ import annotations

from pathlib import Path

from finn.custom_op.fpgadataflow.elementwise_binary import ElementwiseAdd
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw.custom_op.base import ProjectRTLBackend, generated_header
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module


@register
class ElementwiseAddStreams_rtl(ElementwiseAdd, ProjectRTLBackend):
    """lhs + rhs, element by element, PE elements per beat, both from streams."""

    LIBRARY_FILES = ("stream_add.sv",)

    def get_nodeattr_types(self):
        # ElementwiseBinaryOperation builds its attributes from HWCustomOp directly, skipping
        # the MRO, so the RTL backend's attributes (gen_top_module) must be added here
        attrs = ElementwiseAdd.get_nodeattr_types(self)
        attrs.update(ProjectRTLBackend.get_nodeattr_types(self))
        return attrs

    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """Why stream_add cannot implement ``node`` (an ElementwiseAdd or _hls node), or None."""
        if node.op_type not in ("ElementwiseAdd", "ElementwiseAdd_hls", "ElementwiseAddStreams_rtl"):
            return f"{node.op_type} is not an ElementwiseAdd node"
        op = getCustomOp(node)
        for ind, side in enumerate(("lhs", "rhs")):
            if op.get_nodeattr(f"{side}_style") != "input" or (
                    model is not None and model.get_initializer(node.input[ind]) is not None):
                return f"the {side} operand is a constant, stream_add adds two streams"
        if op.get_nodeattr("mlo_max_iter"):
            return "loop-rolled (mlo_max_iter) operation, not supported by stream_add"
        lhs, rhs, out = op.lhs_dtype, op.rhs_dtype, op.out_dtype
        for side, dt in (("lhs", lhs), ("rhs", rhs), ("output", out)):
            if not dt.is_integer():
                return f"{side} data type {dt.name} is not an integer type"
            if dt == DataType["BIPOLAR"]:
                return f"{side} data type BIPOLAR (streamed as 0/1 bits) is not supported"
        lo, hi = lhs.min() + rhs.min(), lhs.max() + rhs.max()
        if lo < out.min() or hi > out.max():
            # python execution never wraps, so a narrower output would differ from FINN
            return f"output type {out.name} cannot hold every sum ({lo}..{hi})"
        if not (list(op.lhs_shape) == list(op.rhs_shape) == list(op.out_shape)):
            return (f"broadcasting ({list(op.lhs_shape)} + {list(op.rhs_shape)}) "
                    "is not supported, both operands must have the output's shape")
        if op.pe < 1 or op.out_shape[-1] % op.pe != 0:
            return f"PE={op.pe} does not divide the last axis ({op.out_shape[-1]})"
        return None

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        pe = self.pe
        lhs, rhs, out = self.lhs_dtype, self.rhs_dtype, self.out_dtype
        wa, wb, wo = (self.get_instream_width_padded(0), self.get_instream_width_padded(1),
                      self.get_outstream_width_padded(0))
        a_bits, b_bits, o_bits = pe * lhs.bitwidth(), pe * rhs.bitwidth(), pe * out.bitwidth()
        core = core_instance("stream_add", {
            "PE": pe, "A_WIDTH": lhs.bitwidth(), "A_SIGNED": int(lhs.signed()),
            "B_WIDTH": rhs.bitwidth(), "B_SIGNED": int(rhs.signed()), "O_WIDTH": out.bitwidth(),
        }, {
            "a_tdata": f"in0_V_TDATA[{a_bits - 1}:0]", "a_tvalid": "in0_V_TVALID", "a_tready": "in0_V_TREADY",
            "b_tdata": f"in1_V_TDATA[{b_bits - 1}:0]", "b_tvalid": "in1_V_TVALID", "b_tready": "in1_V_TREADY",
            "out_tdata": "sum_tdata", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
        })
        header = generated_header(
            self, f"{top}: FINN-interface wrapper of stream_add ({lhs.name} + {rhs.name} -> {out.name}, PE {pe})"
        )
        body = (f"    wire [{o_bits - 1}:0] sum_tdata;\n\n{core}\n\n"
                + tdata_output("out0_V_TDATA", wo, o_bits, "sum_tdata"))
        text = wrapper_module(header, top, [(wa, a_bits, "lhs"), (wb, b_bits, "rhs")], [(wo, "")], body)
        (code_dir / f"{top}.v").write_text(text)
        return [f"{top}.v"]
