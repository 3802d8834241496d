"""DuplicateStreams_rtl: FINN's DuplicateStreams (the fork of a residual block) in this
project's RTL (hw/rtl/stream_fork.sv), which FINN has only as HLS."""

from __future__ import annotations

from pathlib import Path

from finn.custom_op.fpgadataflow.duplicatestreams import DuplicateStreams
from qonnx.custom_op.registry import getCustomOp

from hw.custom_op.base import ProjectRTLBackend, generated_header
from hw.custom_op.registry import register
from hw.custom_op.stream_wrapper_rtl import core_instance, tdata_output, wrapper_module


@register
class DuplicateStreams_rtl(DuplicateStreams, ProjectRTLBackend):
    """N copies of one stream; each output takes its copy of a beat when it is ready."""

    LIBRARY_FILES = ("stream_fork.sv",)

    @staticmethod
    def unsupported_reason(model, node) -> str | None:
        """Why stream_fork cannot implement ``node`` (a DuplicateStreams or _hls node), or None."""
        if node.op_type not in ("DuplicateStreams", "DuplicateStreams_hls", "DuplicateStreams_rtl"):
            return f"{node.op_type} is not a DuplicateStreams node"
        op = getCustomOp(node)
        ch, pe, n = op.get_nodeattr("NumChannels"), op.get_nodeattr("PE"), op.get_nodeattr("NumOutputStreams")
        if pe < 1 or ch % pe != 0:
            return f"PE={pe} does not divide NumChannels={ch}"
        if n < 1 or n != len(node.output):
            return f"NumOutputStreams={n} but the node has {len(node.output)} outputs"
        # any data type is fine: the fork copies bits without looking at them
        return None

    def write_hdl(self, model, code_dir: Path, top: str) -> list[str]:
        n = self.get_nodeattr("NumOutputStreams")
        bits = self.get_instream_width()  # PE elements; the stream pads this to whole bytes
        w_in = self.get_instream_width_padded()
        w_out = self.get_outstream_width_padded()
        lines = [
            f"    wire [{n * bits - 1}:0] fork_tdata;  // output i in bits [i*{bits} +: {bits}]",
            f"    wire [{n - 1}:0] fork_tvalid;",
            "",
            core_instance("stream_fork", {"WIDTH": bits, "N": n}, {
                "in_tdata": f"in0_V_TDATA[{bits - 1}:0]", "in_tvalid": "in0_V_TVALID", "in_tready": "in0_V_TREADY",
                "out_tdata": "fork_tdata", "out_tvalid": "fork_tvalid",
                "out_tready": "{" + ", ".join(f"out{i}_V_TREADY" for i in reversed(range(n))) + "}",
            }),
            "",
        ]
        for i in range(n):
            lines += [
                tdata_output(f"out{i}_V_TDATA", w_out, bits, f"fork_tdata[{(i + 1) * bits - 1}:{i * bits}]"),
                f"    assign out{i}_V_TVALID = fork_tvalid[{i}];",
            ]
        header = generated_header(self, f"{top}: FINN-interface wrapper of stream_fork ({n} outputs)")
        text = wrapper_module(header, top, [(w_in, bits, "")], [(w_out, "")] * n, "\n".join(lines))
        (code_dir / f"{top}.v").write_text(text)
        return [f"{top}.v"]
