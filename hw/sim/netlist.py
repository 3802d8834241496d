"""The netlist that yosys ``synth_xilinx`` made of a design, simulated in Verilator like its RTL.

``hw.synth.runner.synthesize`` writes every run's mapped netlist (``netlist.v``: LUTs, carry chains,
flip-flops, SRLs, LUT RAM, block RAM ... as Xilinx primitives, flattened into the design's top
module with the same ports). ``netlist_design`` builds it with the primitives' simulation models
(hw.sim.primitives) into the same C++ AXI-stream testbench as the RTL (hw.sim.verilator), so a
netlist runs the same inputs, gaps and back-pressure, and its outputs are compared with the same
reference. ``node_netlist`` does that for one FINN RTL node: the same sources the yosys estimate
synthesizes (hw.synth.accelerator.layer_sources), the same cached run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hw.sim.primitives import check_netlist, primitive_sources
from hw.sim.verilator import DEFAULT_CACHE, SimResult, Stream, VerilatedDesign


def netlist_design(top: str, netlist: str | Path, inputs: list[Stream], outputs: list[Stream],
                   cache_dir: str | Path | None = None, **kwargs) -> VerilatedDesign:
    """A VerilatedDesign of the yosys netlist ``netlist`` (top module ``top``) with the Xilinx
    primitive models; raises hw.sim.primitives.NetlistUnsupported for a primitive setting no model
    simulates."""
    netlist = Path(netlist)
    check_netlist(netlist.read_text(errors="replace"))
    cache = Path(cache_dir) if cache_dir else DEFAULT_CACHE
    return VerilatedDesign(top, [*primitive_sources(cache / "primitives"), netlist], inputs, outputs,
                           cache_dir=cache, **kwargs)


def node_synth_workdir(op, root: str | Path) -> Path:
    return Path(root) / op.onnx_node.name


def node_netlist(op, workdir: str | Path, cache_dir: str | Path | None = None, timeout: float | None = None):
    """(VerilatedDesign of the node's netlist, its SynthResult): the node's RTL synthesized by yosys
    in ``workdir`` (cached there) as the estimate does it, then its netlist built for simulation."""
    from hw.synth.accelerator import layer_sources
    from hw.synth.runner import synthesize

    top, files = layer_sources(op)
    result = synthesize(top, files, workdir=workdir, timeout=timeout)
    intf = op.get_verilog_top_module_intf_names()
    inputs = [Stream(name, int(width)) for name, width in intf["s_axis"]]
    outputs = [Stream(name, int(width)) for name, width in intf["m_axis"]]
    return netlist_design(top, result.netlist, inputs, outputs, cache_dir=cache_dir), result


@dataclass
class NodeComparison:
    """One node run as RTL and as its yosys netlist on the same inputs, gaps and back-pressure."""

    name: str
    op_type: str
    rtl: list[np.ndarray]
    netlist: list[np.ndarray]
    rtl_result: SimResult
    netlist_result: SimResult
    rtl_seconds: float      # the RTL simulation (its build excluded)
    netlist_seconds: float  # the netlist simulation (its build excluded)
    synth_seconds: float    # yosys (0 when taken from the cache)
    build_seconds: float    # Verilator + g++ of the netlist (0 when taken from the cache)
    cells: dict[str, int]
    difference: str | None  # the first output where RTL and netlist differ, None when equal

    @property
    def cycles_equal(self) -> bool:
        return all(np.array_equal(self.rtl_result.out_cycles[s], self.netlist_result.out_cycles[s])
                   for s in self.rtl_result.out_cycles)


def first_difference(a: list[np.ndarray], b: list[np.ndarray], a_name: str = "RTL",
                     b_name: str = "netlist", streams: list[str] | None = None) -> str | None:
    """None when every output array of ``a`` equals ``b`` as integers; else the first differing
    element named: stream, index, both values."""
    for k, (x, y) in enumerate(zip(a, b)):
        stream = streams[k] if streams else f"output {k}"
        x, y = np.asarray(x), np.asarray(y)
        if x.shape != y.shape:
            return f"{stream}: shape {x.shape} ({a_name}) != {y.shape} ({b_name})"
        bad = np.argwhere(x != y)
        if bad.size:
            i = tuple(int(v) for v in bad[0])
            return (f"{stream}: {len(bad)} of {x.size} elements differ, first at index {i}: "
                    f"{a_name} {x[i]:g} vs {b_name} {y[i]:g}")
    if len(a) != len(b):
        return f"{len(a)} outputs ({a_name}) != {len(b)} ({b_name})"
    return None


def compare_node(op, inputs: list[np.ndarray], workdir: str | Path, cache_dir: str | Path | None = None,
                 timeout: float | None = None, **run_kwargs) -> NodeComparison:
    """Run ``inputs`` through the node's RTL and through the netlist yosys makes of it (synthesized in
    ``workdir``), with the same ``run_kwargs`` (gap_prob, stall_prob, seed ...)."""
    from hw.sim.node import node_design, simulate_node

    rtl_design = node_design(op, cache_dir=cache_dir)
    rtl_design.build()
    t0 = time.perf_counter()
    rtl, rtl_res = simulate_node(op, inputs, design=rtl_design, **run_kwargs)
    rtl_s = time.perf_counter() - t0
    design, synth = node_netlist(op, workdir, cache_dir=cache_dir, timeout=timeout)
    design.build()
    t0 = time.perf_counter()
    net, net_res = simulate_node(op, inputs, design=design, **run_kwargs)
    net_s = time.perf_counter() - t0
    streams = [s.name for s in design.outputs]
    return NodeComparison(
        name=op.onnx_node.name, op_type=op.onnx_node.op_type, rtl=rtl, netlist=net, rtl_result=rtl_res,
        netlist_result=net_res, rtl_seconds=rtl_s, netlist_seconds=net_s,
        synth_seconds=0.0 if synth.cached else synth.seconds, build_seconds=design.build_seconds or 0.0,
        cells=dict(synth.cells), difference=first_difference(rtl, net, streams=streams))
