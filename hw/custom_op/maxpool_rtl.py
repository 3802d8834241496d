"""MaxPool_rtl: FINN's Pool with Function "MaxPool" (the max pool FINN lowers to a depthwise
sliding window + Pool, HLS only in FINN) in this project's RTL (hw/rtl/max_pool.sv).

The element order of the input stream. FINN's depthwise sliding window
(ConvolutionInputGenerator_rtl, depthwise = 1, SIMD = the pool's PE, as FINN's SetFolding ties
them) sends each output pixel's windows channel-fold-major, [channel fold][kernel position][PE]
(FINN's ConvolutionInputGenerator_rtl says so, and its python execution in exec_mode "cppsim"
interleaves its tensor to that order; tests/hw/custom_op/test_maxpool_rtl.py simulates the real
one). FINN's python Pool reads its input as [kernel position][channel], im2col's order, which
is that order only when PE = Channels: with PE < Channels FINN's python pair (the window's
python, then Pool's) maxes over the wrong elements. finn-hlslib's Pool_batch, like max_pool.sv,
pools every K_h x K_w consecutive beats. So this op's tensor is the stream as it is sent, and
its python execution puts it into im2col's order first, then runs FINN's Pool.execute_node:
FINN's semantics on the stream the window really sends, the same as FINN's for PE = Channels.
``unsupported_reason`` refuses a node whose producer sends another order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from finn.custom_op.fpgadataflow.pool import Pool
from qonnx.core.datatype import DataType
from qonnx.custom_op.registry import getCustomOp

from hw.custom_op.base import ProjectRTLBackend, generated_header
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module

# nodes between the sliding window and the pool that move beats without reordering elements
ORDER_KEEPING = ("StreamingFIFO", "StreamingDataWidthConverter", "StreamWidthConverter_rtl")


def window_major(x: np.ndarray, window: int, channels: int, pe: int) -> np.ndarray:
    """A pool input in stream order, [..., channel fold][window position][PE] in its last axis,
    in im2col's order [..., window position][channel] (FINN's python Pool's)."""
    lead = x.shape[:-1]
    return x.reshape(*lead, channels // pe, window, pe).swapaxes(-3, -2).reshape(*lead, window * channels)


def stream_major(x: np.ndarray, window: int, channels: int, pe: int) -> np.ndarray:
    """The inverse of window_major: im2col's order to the stream's."""
    lead = x.shape[:-1]
    return x.reshape(*lead, window, channels // pe, pe).swapaxes(-3, -2).reshape(*lead, window * channels)


def pool_model(dtype: str, channels: int, pe: int, kernel: int, out_hw: tuple[int, int] = (2, 2),
               images: int = 1, function: str = "MaxPool", op_type: str = "MaxPool_rtl", out_dtype: str | None = None):
    """A model of one Pool node (``op_type``: this project's MaxPool_rtl or FINN's Pool) over
    ``images`` x out_hw windows of kernel x kernel positions: what a max pool alone is simulated
    and synthesized from (tests, bench/fit_pool_cost.py)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    idt, odt = DataType[dtype], DataType[out_dtype or dtype]
    domain = "finn.custom_op.fpgadataflow" + (".rtl" if op_type.endswith("_rtl") else "")
    ishape, oshape = [images, *out_hw, kernel * kernel * channels], [images, *out_hw, channels]
    node = helper.make_node(op_type, ["x"], ["y"], domain=domain, name=f"{op_type}_0", backend="fpgadataflow",
                            Channels=channels, PE=pe, KernelSize=[kernel, kernel], Function=function,
                            OutImgDims=list(out_hw), InputDataType=idt.name, OutputDataType=odt.name,
                            BatchSize=images)
    graph = helper.make_graph([node], "pool", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ishape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, oshape)])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", idt)
    model.set_tensor_datatype("y", odt)
    return model


def _window_source(model, node):
    """The node that sets the element order of ``node``'s input (the first producer that is not
    a FIFO or width converter), or None for a graph input."""
    if model is None:
        return None
    prod = model.find_producer(node.input[0])
    while prod is not None and prod.op_type.startswith(ORDER_KEEPING):
        prod = model.find_producer(prod.input[0])
    return prod


@register
class MaxPool_rtl(Pool, ProjectRTLBackend):
    """Lane-wise maximum of every K_h x K_w consecutive beats, PE channels per beat."""

    LIBRARY_FILES = ("max_pool.sv",)

    def window(self) -> int:
        return int(np.prod(self.get_nodeattr("KernelSize")))

    def execute_node(self, context, graph):
        """rtlsim: Verilator; otherwise FINN's python Pool on the stream put into im2col order."""
        if self.get_nodeattr("exec_mode") == "rtlsim":
            return ProjectRTLBackend.execute_node(self, context, graph)
        node = self.onnx_node
        ch, pe = self.get_nodeattr("Channels"), self.get_nodeattr("PE")
        local = dict(context)
        local[node.input[0]] = window_major(np.asarray(context[node.input[0]]), self.window(), ch, pe)
        Pool.execute_node(self, local, graph)
        context[node.output[0]] = local[node.output[0]]

    def lut_estimation(self, fpgapart: str = "") -> int:
        """LUTs of max_pool by hw/synth/cost_model.py's model fitted to yosys (FINN: 0 for Pool)."""
        from hw.synth.cost_model import predict_pool_luts

        return round(predict_pool_luts(self.get_nodeattr("PE"), self.get_input_datatype().bitwidth()))

    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """Why max_pool cannot implement ``node`` (a Pool, Pool_hls or MaxPool_rtl node), or None."""
        if node.op_type not in ("Pool", "Pool_hls", "MaxPool_rtl"):
            return f"{node.op_type} is not a Pool node"
        op = getCustomOp(node)
        fxn = op.get_nodeattr("Function")
        if fxn != "MaxPool":
            return f"Function={fxn}: only MaxPool has RTL here"
        ch, pe = op.get_nodeattr("Channels"), op.get_nodeattr("PE")
        if pe < 1 or ch % pe != 0:
            return f"PE={pe} does not divide Channels={ch}"
        kernel = list(op.get_nodeattr("KernelSize"))
        if len(kernel) != 2 or min(kernel) < 1:
            return f"KernelSize={kernel} is not (height, width)"
        idt = op.get_input_datatype()
        if not idt.is_integer():
            return f"input type {idt.name} is not an integer type"
        odt = DataType[op.get_nodeattr("OutputDataType")]
        if odt != idt:
            return f"output type {odt.name} differs from the input type {idt.name}"
        if kernel[0] * kernel[1] > 1:
            return MaxPool_rtl._order_reason(_window_source(model, node), ch, pe)
        return None  # a 1x1 window: every order is the same

    @staticmethod
    def _order_reason(src, ch: int, pe: int) -> str | None:
        """Why the stream from ``src`` is not in max_pool's order for ``ch`` channels, PE ``pe``."""
        if src is None:
            return None  # a graph input: the stream is taken in the op's order
        if not src.op_type.startswith("ConvolutionInputGenerator"):
            if pe == ch:
                return None  # [window position][channel] from anything that sends im2col's order
            return (f"PE={pe} < Channels={ch} needs the channel-fold-major stream of a depthwise sliding "
                    f"window, but the input comes from {src.op_type}")
        win = getCustomOp(src)
        simd, depthwise = win.get_nodeattr("SIMD"), win.get_nodeattr("depthwise")
        if win.get_nodeattr("IFMChannels") != ch:
            return f"{src.name} has {win.get_nodeattr('IFMChannels')} channels, the pool {ch}"
        if depthwise and simd < ch and simd != pe:
            return f"{src.name} sends its windows {simd} channels at a time (depthwise), the pool reads PE={pe}"
        if (not depthwise or simd == ch) and pe != ch:
            return (f"{src.name} sends im2col's order (depthwise={depthwise}, SIMD={simd}), which a pool "
                    f"with PE={pe} < Channels={ch} does not read")
        return None

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        idt = self.get_input_datatype()
        pe, ch, kernel = self.get_nodeattr("PE"), self.get_nodeattr("Channels"), self.get_nodeattr("KernelSize")
        bits = pe * idt.bitwidth()
        w_in, w_out = self.get_instream_width_padded(), self.get_outstream_width_padded()
        # BIPOLAR travels as bits (-1 -> 0, +1 -> 1): unsigned, in the same order
        signed = idt.signed() and idt != DataType["BIPOLAR"]
        core = core_instance("max_pool", {
            "PE": pe, "WINDOW": self.window(), "IN_WIDTH": idt.bitwidth(), "IN_SIGNED": int(signed),
        }, {
            "in_tdata": f"in0_V_TDATA[{bits - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
            "out_tdata": "max_tdata", "out_tvalid": "out0_V_TVALID", "out_tready": "out0_V_TREADY",
        })
        header = generated_header(
            self, f"{top}: FINN-interface wrapper of max_pool ({kernel[0]}x{kernel[1]} window, {ch} channels, "
                  f"{idt.name}, PE {pe})"
        )
        body = (f"    wire [{bits - 1}:0] max_tdata;\n\n{core}\n\n"
                + tdata_output("out0_V_TDATA", w_out, bits, "max_tdata"))
        in_note = "per window position PE channels; a pixel's channel folds one after another"
        text = wrapper_module(header, top, [(w_in, bits, in_note)], [(w_out, "")], body)
        (code_dir / f"{top}.v").write_text(text)
        return [f"{top}.v"]
