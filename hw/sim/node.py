"""Simulate one FINN hardware node (FINN's RTL layers and this project's alike) with Verilator.

The node's own HDL (``generate_hdl``) and file list (``get_rtl_file_list``) and its FINN stream
interface (``get_verilog_top_module_intf_names``, folded shapes, data types) are all the harness
needs, so the same code checks finn-rtllib layers and ours. Inputs and outputs are numpy arrays
in the node's normal (unfolded) shapes, as FINN's python execution uses them.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType

from hw.sim.axis import pack_words, unpack_words
from hw.sim.verilator import SimResult, Stream, VerilatedDesign


def ensure_hdl(model, node, fpgapart: str = "xc7z020clg400-1", clk_ns: float = 10.0, code_dir: str | None = None):
    """Generate the node's HDL into its code_gen_dir_ipgen (made when unset); returns the op."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    d = op.get_nodeattr("code_gen_dir_ipgen")
    if not d or not Path(d).is_dir() or not op.get_nodeattr("gen_top_module"):
        d = code_dir or tempfile.mkdtemp(prefix=f"hdl_{node.name}_", dir=os.environ.get("FINN_BUILD_DIR"))
        Path(d).mkdir(parents=True, exist_ok=True)
        op.set_nodeattr("code_gen_dir_ipgen", str(d))
        op.generate_hdl(model, fpgapart, clk_ns)
    return op


def node_design(op, cache_dir: str | Path | None = None) -> VerilatedDesign:
    intf = op.get_verilog_top_module_intf_names()
    inputs = [Stream(name, int(width)) for name, width in intf["s_axis"]]
    outputs = [Stream(name, int(width)) for name, width in intf["m_axis"]]
    files = [Path(f) for f in op.get_rtl_file_list(abspath=True)]
    top = op.get_nodeattr("gen_top_module") or op.get_verilog_top_module_name()
    include = sorted({f.parent for f in files})
    return VerilatedDesign(top, files, inputs, outputs, cache_dir=cache_dir, include_dirs=include)


def stream_inputs(op) -> list[int]:
    """Indices of the node inputs that are streams (weights held in the layer are not)."""
    return [i for i in range(len(op.onnx_node.input)) if op.get_instream_width_padded(i) != 0]


def simulate_node(
    op,
    inputs: list[np.ndarray],
    design: VerilatedDesign | None = None,
    **run_kwargs,
) -> tuple[list[np.ndarray], SimResult]:
    """Run ``inputs`` (one array per stream input, normal shape, integer values) through the
    node's RTL; returns its outputs in normal shape and the raw simulation result."""
    design = design or node_design(op)
    feed = {}
    for stream, idx, x in zip(design.inputs, stream_inputs(op), inputs):
        dt = op.get_input_datatype(idx)
        folded = op.get_folded_input_shape(idx)
        beats = np.asarray(x).reshape(-1, folded[-1])
        _check_range(op, f"input {idx}", beats, dt)
        feed[stream.name] = pack_words(_as_int(beats, dt), dt.bitwidth(), stream.width)
    expected = {}
    for o, stream in enumerate(design.outputs):
        folded = op.get_folded_output_shape(o)
        expected[stream.name] = int(np.prod(folded[:-1]))
    result = design.run(feed, expected, **run_kwargs)
    outs = []
    for o, stream in enumerate(design.outputs):
        dt = op.get_output_datatype(o)
        folded = op.get_folded_output_shape(o)
        bipolar = dt == DataType["BIPOLAR"]
        # BIPOLAR counts as signed, but its one bit is 0/1 on the stream, not two's complement
        y = unpack_words(result.outputs[stream.name], dt.bitwidth(), folded[-1], dt.signed() and not bipolar)
        if bipolar:
            y = 2 * y - 1
        outs.append(y.reshape(op.get_normal_output_shape(o)).astype(np.float32))
    return outs, result


def _as_int(values: np.ndarray, dt) -> np.ndarray:
    if dt == DataType["BIPOLAR"]:  # streams carry bipolar values as bits, -1 -> 0
        return ((np.asarray(values) + 1) // 2).astype(np.int64)
    return np.asarray(values).astype(np.int64)


def _check_range(op, what: str, values: np.ndarray, dt) -> None:
    v = np.asarray(values)
    if not np.array_equal(v, np.round(v)) or v.min() < dt.min() or v.max() > dt.max():
        raise ValueError(f"{op.onnx_node.name} {what}: values outside {dt.name}")
