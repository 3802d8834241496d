"""StreamWidthConverter_rtl: FINN's StreamingDataWidthConverter (inserted by InsertDWC where a
producer's folding writes a different number of bits per beat than its consumer reads) in this
project's RTL (hw/rtl/stream_width_convert.sv), in place of finn-rtllib's general converter.

The name is not ``StreamingDataWidthConverter_rtl``: FINN's own converter has that one."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.streamingdatawidthconverter import StreamingDataWidthConverter
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw.custom_op.base import ProjectRTLBackend, generated_header
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module

CONVERTER_OPS = ("StreamingDataWidthConverter", "StreamingDataWidthConverter_hls",
                 "StreamingDataWidthConverter_rtl", "StreamWidthConverter_rtl")


def conversion(in_bits: int, out_bits: int) -> str:
    """How stream_width_convert does it: 'widen xK', 'narrow xK' or 'widen xA, narrow xB'."""
    lcm = math.lcm(in_bits, out_bits)
    if lcm == out_bits:
        return f"widen x{lcm // in_bits}"
    if lcm == in_bits:
        return f"narrow x{lcm // out_bits}"
    return f"widen x{lcm // in_bits} to {lcm} bits, narrow x{lcm // out_bits}"


def converter_model(in_bits: int, out_bits: int, dtype: str = "UINT2", op_type: str = "StreamWidthConverter_rtl",
                    images: int = 1):
    """A model of one converter node (this project's, or FINN's ``StreamingDataWidthConverter_rtl``)
    over ``images`` vectors of one common multiple of the two widths: what a converter alone is
    synthesized from (bench/fit_converter_cost.py, the cost model's tests)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    dt = DataType[dtype]
    shape = [images, math.lcm(in_bits, out_bits) // dt.bitwidth()]
    node = helper.make_node(op_type, ["x"], ["y"], domain="finn.custom_op.fpgadataflow.rtl", name=f"{op_type}_0",
                            backend="fpgadataflow", inShape=shape, outShape=shape, inWidth=in_bits,
                            outWidth=out_bits, dataType=dt.name)
    graph = helper.make_graph([node], "converter", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = ModelWrapper(qonnx_make_model(graph))
    for t in ("x", "y"):
        model.set_tensor_datatype(t, dt)
    return model


@register
class StreamWidthConverter_rtl(StreamingDataWidthConverter, ProjectRTLBackend):
    """The same stream of bits in beats of outWidth instead of inWidth bits."""

    LIBRARY_FILES = ("stream_widen.sv", "stream_narrow.sv", "stream_width_convert.sv")

    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """Why stream_width_convert cannot implement ``node`` (a converter node), or None."""
        if node.op_type not in CONVERTER_OPS:
            return f"{node.op_type} is not a StreamingDataWidthConverter node"
        op = getCustomOp(node)
        w_in, w_out = op.get_nodeattr("inWidth"), op.get_nodeattr("outWidth")
        bits = DataType[op.get_nodeattr("dataType")].bitwidth()
        if w_in < 1 or w_out < 1 or w_in % bits or w_out % bits:
            return f"stream widths {w_in} -> {w_out} bits are not whole {bits}-bit elements"
        if w_in == w_out:
            return f"inWidth = outWidth = {w_in}: nothing to convert"
        total = int(np.prod(op.get_nodeattr("inShape"))) * bits
        if total != int(np.prod(op.get_nodeattr("outShape"))) * bits:
            return f"inShape {op.get_nodeattr('inShape')} and outShape {op.get_nodeattr('outShape')} differ in size"
        lcm = math.lcm(w_in, w_out)
        if total % lcm:
            # the converter moves whole words of lcm bits; a tensor must fill them
            return f"a tensor of {total} bits is not a whole number of {lcm}-bit words (lcm of {w_in}, {w_out})"
        return None

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        w_in, w_out = self.get_instream_width(), self.get_outstream_width()
        core = core_instance("stream_width_convert", {"IN_BITS": w_in, "OUT_BITS": w_out}, {
            "in_tdata": f"in0_V_TDATA[{w_in - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
            "out_tdata": "conv_tdata", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
        })
        header = generated_header(
            self, f"{top}: FINN-interface wrapper of stream_width_convert ({w_in} -> {w_out} bits per beat: "
                  f"{conversion(w_in, w_out)})"
        )
        body = (f"    wire [{w_out - 1}:0] conv_tdata;\n\n{core}\n\n"
                + tdata_output("out0_V_TDATA", self.get_outstream_width_padded(), w_out, "conv_tdata"))
        text = wrapper_module(header, top, [(self.get_instream_width_padded(), w_in, "")],
                              [(self.get_outstream_width_padded(), "")], body)
        (code_dir / f"{top}.v").write_text(text)
        return [f"{top}.v"]
