"""Stitch a dataflow partition into one top-level Verilog module with FIFOs between layers.

Every node of the partition must have RTL (finn-rtllib's or this project's); each tensor that
runs from one node to another becomes a ``stream_fifo`` (hw/rtl/stream_fifo.sv: finn-rtllib's
fifo.sv does not build in Verilator), so residual forks and joins need nothing special:
DuplicateStreams gives each branch its own tensor, hence its own FIFO. The top keeps FINN's
stream names (``in0_V``, ``out0_V``, ...) and, for FIFO sizing, exposes every FIFO's peak
occupancy as an extra output ``fifo<k>_maxcount``.

FIFO depths come from ``size_fifos``: build with deep FIFOs, run real inputs, read the peak
occupancy of each, shrink to peak + margin, and check that the shrunk design runs at the same
speed (FINN's own sizing needs Vivado).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from common.errors import UserError
from hw.block_ram import bram36
from hw.sim.node import ensure_hdl, stream_inputs
from hw.sim.verilator import Stream, VerilatedDesign

FIFO_FILE = Path(__file__).resolve().parent / "rtl" / "stream_fifo.sv"
# Where a FIFO keeps its beats. Deeper than BRAM_FIFO_DEPTH: block RAM (the depth at which FINN
# too stops using shift-register FIFOs, InsertFIFO's max_qsrl_depth). Shallower: LUTs
# (distributed RAM), unless block RAM saves at least LUTS_PER_BRAM36 LUTs for each BRAM36 it
# takes. In LUTs a FIFO costs its LUT RAM, a multiplexer over the RAM's 64-word banks and its
# pointers and counts (fifo_distributed_luts); in block RAM only the pointers and counts
# (BRAM_FIFO_LUTS). Rate: on the pynq-z2 design of --margin 0.1 the weights leave about 30 of the
# 126 BRAM36 of the budget free, while LUTs are what stops a faster folding; the 82-94 x 144-bit
# FIFOs at its residual joins take 472-477 LUT each in LUTs, 45 in 2 BRAM36 (yosys).
BRAM_FIFO_DEPTH = 256
LUTS_PER_BRAM36 = 100
BRAM_FIFO_LUTS = 45  # yosys: 28-58 LUT for the block-RAM FIFOs of the default builds
LUTS_PER_COUNT_BIT = 5  # pointers, counts, handshakes: about 5 LUT per bit of the occupancy count


def fifo_lutram_luts(depth: int, width: int) -> int:
    """LUTs of a stream_fifo's memory (DEPTH-1 words) in distributed RAM: the cheaper of RAM32M
    banks (6 bits of 32 words per 4 LUTs) and RAM64M banks (3 bits of 64 words per 4 LUTs). yosys
    mapped 2 x 168 bits to 112 LUT RAM, 74 x 144 to 288, 237 x 144 to 768, as here; 215 x 144 to
    768 where RAM32M banks would take 672."""
    words = max(1, depth - 1)
    return 4 * min(math.ceil(width / 6) * math.ceil(words / 32), math.ceil(width / 3) * math.ceil(words / 64))


def fifo_distributed_luts(depth: int, width: int) -> int:
    """All LUTs of a stream_fifo in distributed RAM: its LUT RAM, one LUT per bit and extra 64-word
    bank to select the bank read, and the control. Against yosys: 81 x 144 bits 467 (yosys 472),
    106 x 48 211 (215), 194 x 16 172 (161), 36 x 144 222 (222), 59 x 16 54 (60), 2 x 168 122 (122)."""
    words = max(1, depth - 1)
    return (fifo_lutram_luts(depth, width) + width * (math.ceil(words / 64) - 1)
            + LUTS_PER_COUNT_BIT * count_bits(depth))


def fifo_bram36(depth: int, width: int) -> float:
    """BRAM36 of a stream_fifo's memory (DEPTH-1 words) in block RAM."""
    return bram36(depth - 1, width)


def count_bits(depth: int) -> int:
    """Width of stream_fifo's occupancy count (and limit) for ``depth`` beats: $clog2(DEPTH+1)."""
    return math.ceil(math.log2(depth + 1))


def fifo_ram_style(depth: int, width: int) -> str:
    """Xilinx ram_style of a stream_fifo of ``depth`` beats of ``width`` bits."""
    saved = fifo_distributed_luts(depth, width) - BRAM_FIFO_LUTS
    if depth > BRAM_FIFO_DEPTH or saved >= LUTS_PER_BRAM36 * fifo_bram36(depth, width):
        return "block"
    return "distributed"


class NoRTL(UserError):
    """A node of the partition has no RTL implementation."""


@dataclass
class Edge:
    tensor: str
    src: tuple[int, int] | None  # (node index, output port); None: the partition's input
    dst: tuple[int, int] | None  # (node index, input port); None: the partition's output
    width: int  # TDATA bits (padded)
    beats_per_image: int
    depth: int = 2

    @property
    def has_fifo(self) -> bool:
        return self.src is not None and self.dst is not None


@dataclass
class Stitched:
    top: str
    files: list[Path]
    inputs: list[Stream]
    outputs: list[Stream]
    edges: list[Edge]
    ops: list = field(default_factory=list)
    monitored: list[str] = field(default_factory=list)  # tensors seen on ports mon<k>_*
    limit_ports: bool = False  # FIFO k holds at most input fifo<k>_limit beats (sizing runs)
    peak_ports: bool = True  # outputs fifo<k>_maxcount: each FIFO's peak occupancy (sizing runs)

    def fifo_edges(self) -> list[Edge]:
        return [e for e in self.edges if e.has_fifo]

    def design(self, cache_dir=None) -> VerilatedDesign:
        probes = [f"fifo{k}_maxcount" for k, _ in enumerate(self.fifo_edges())] if self.peak_ports else []
        include = sorted({f.parent for f in self.files})
        widths = {e.tensor: e.width for e in self.edges}
        monitors = [Stream(f"mon{k}", widths[t]) for k, t in enumerate(self.monitored)]
        settings = [f"fifo{k}_limit" for k, _ in enumerate(self.fifo_edges())] if self.limit_ports else []
        return VerilatedDesign(self.top, self.files, self.inputs, self.outputs, cache_dir=cache_dir,
                               include_dirs=include, probes=probes, monitors=monitors, settings=settings)

    def limits(self, depths: dict[str, int]) -> dict[str, int]:
        """The settings (run(settings=...)) under which a design stitched with limit_ports runs
        as if stitched with ``depths`` (every FIFO's tensor; none deeper than stitched)."""
        if not self.limit_ports:
            raise ValueError("stitched without limit ports")
        out = {}
        for k, e in enumerate(self.fifo_edges()):
            d = int(depths[e.tensor])
            if not 2 <= d <= e.depth:
                raise ValueError(f"FIFO {e.tensor}: depth {d} outside 2..{e.depth}, the depth it was stitched with")
            out[f"fifo{k}_limit"] = d
        return out

    def edge(self, tensor: str) -> Edge:
        return next(e for e in self.edges if e.tensor == tensor)


def _ops(model, code_dir: Path, fpgapart: str, clk_ns: float):
    from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
    from qonnx.custom_op.registry import getCustomOp

    ops = []
    for k, node in enumerate(model.graph.node):
        op = getCustomOp(node)
        if not isinstance(op, RTLBackend):
            raise NoRTL(
                f"node {node.name} ({node.op_type}) has no RTL implementation; "
                "only FINN's RTL layers and this project's (hw.custom_op) can be stitched"
            )
        ops.append(ensure_hdl(model, node, fpgapart, clk_ns, str(code_dir / f"{k:02d}_{node.name}")))
    return ops


def stream_edges(model, ops) -> list[Edge]:
    """Every stream of the partition: graph input and output, and each tensor from one layer to
    another (these get a FIFO), with its padded TDATA width and beats per image."""
    producers, consumers = {}, {}
    for k, op in enumerate(ops):
        node = op.onnx_node
        for port, t in enumerate(node.output):
            producers[t] = (k, port)
        for s, idx in enumerate(stream_inputs(op)):
            if node.input[idx] in consumers:
                raise ValueError(f"tensor {node.input[idx]} feeds two streams; insert DuplicateStreams first")
            consumers[node.input[idx]] = (k, s)
    edges = []
    for t in [i.name for i in model.graph.input] + list(producers):
        if t not in producers and t not in consumers:
            continue
        src, dst = producers.get(t), consumers.get(t)
        if src is not None:
            op, port = ops[src[0]], src[1]
            width, shape = op.get_outstream_width_padded(port), op.get_folded_output_shape(port)
        else:
            op, port = ops[dst[0]], stream_inputs(ops[dst[0]])[dst[1]]
            width, shape = op.get_instream_width_padded(port), op.get_folded_input_shape(port)
        if src is not None and dst is not None:
            cons = ops[dst[0]]
            cport = stream_inputs(cons)[dst[1]]
            theirs = (cons.get_instream_width_padded(cport), tuple(cons.get_folded_input_shape(cport))[-1])
            if (width, shape[-1]) != theirs:
                raise ValueError(
                    f"tensor {t}: {op.onnx_node.name} sends {shape[-1]} elements in {width} bits per beat, "
                    f"{cons.onnx_node.name} expects {theirs[1]} in {theirs[0]}; insert data width "
                    "converters first (FINN's InsertDWC)"
                )
        beats = math.prod(shape[:-1])
        edges.append(Edge(t, src, dst, int(width), int(beats)))
    return edges


def link_name(edge: Edge, ops) -> str:
    """A stream between two layers named by its ends ("<producer>:<port> -> <consumer>:<port>"):
    unlike the tensor names, which InsertDWC draws at random, it is the same in every build of
    the same graph, so FIFO depths sized in one build can be found again in another."""
    (ks, ps), (kd, pd) = edge.src, edge.dst
    return f"{ops[ks].onnx_node.name}:{ps} -> {ops[kd].onnx_node.name}:{pd}"


def module_inputs(op) -> list[str]:
    """Input port names of the node's top module, read from its generated HDL. Inputs that the
    stitcher does not connect (AXI-lite of finn-rtllib thresholding, its set-select stream) must
    be tied off: left open they are X, which Verilator may turn into 1s (spurious writes)."""
    top = op.get_nodeattr("gen_top_module")
    for f in op.get_rtl_file_list(abspath=True):
        text = Path(f).read_text()
        m = re.search(rf"\bmodule\s+{re.escape(top)}\b(.*?)\);", text, re.S)
        if m:
            header = re.sub(r"//[^\n]*|/\*.*?\*/", "", m.group(1), flags=re.S)
            header = header[header.rfind("(", 0, header.find("input")) + 1:] if "input" in header else header
            return re.findall(r"\binput\s+(?:wire\s+|logic\s+|reg\s+)?(?:\[[^\]]*\]\s*)?(\w+)", header)
    raise NoRTL(f"module {top} of node {op.onnx_node.name} not found in its RTL files")


def stitch(model, out_dir: str | Path, name: str = "accelerator", depths: dict[str, int] | None = None,
           default_depth: int | None = 2, fpgapart: str = "xc7z020clg400-1", clk_ns: float = 10.0,
           monitors: list[str] = (), limit_ports: bool = False, peak_ports: bool = True) -> Stitched:
    """Write ``<out_dir>/<name>.v`` for the partition ``model``; FIFO depth per tensor name
    from ``depths`` (else ``default_depth``; None: each FIFO holds a whole image of its stream, so
    nothing ever waits for room, where sizing by simulation starts). ``monitors``: tensors between layers whose beats
    the simulation should also see (ports ``mon<k>_TDATA/_TVALID``, valid = a handshake).
    ``limit_ports``: every FIFO gets an input ``fifo<k>_limit``, the beats it may hold (2 up to
    its depth; Stitched.limits), so that one build tries many depths (sizing only). ``peak_ports``
    False: no fifo<k>_maxcount outputs (simulation-only counters that a synthesized design, whose
    netlist is simulated, should not carry)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ops = _ops(model, out_dir / "layers", fpgapart, clk_ns)
    edges = stream_edges(model, ops)
    for e in edges:
        fallback = e.beats_per_image + 2 if default_depth is None else default_depth
        e.depth = max(2, int((depths or {}).get(e.tensor, fallback)))
    files: list[Path] = [FIFO_FILE]
    for op in ops:
        for f in op.get_rtl_file_list(abspath=True):
            if Path(f) not in files:
                files.append(Path(f))
    top_file = out_dir / f"{name}.v"
    fifo_tensors = {e.tensor for e in edges if e.has_fifo}
    bad = [t for t in monitors if t not in fifo_tensors]
    if bad:
        raise ValueError(f"cannot monitor {', '.join(bad)}: only tensors between two layers")
    top_file.write_text(_top_verilog(name, model, ops, edges, list(monitors), limit_ports, peak_ports))
    files.append(top_file)
    inputs = [Stream(f"in{i}_V", e.width) for i, e in enumerate(x for x in edges if x.src is None)]
    outputs = [Stream(f"out{o}_V", e.width) for o, e in enumerate(x for x in edges if x.dst is None)]
    return Stitched(name, files, inputs, outputs, edges, ops, list(monitors), limit_ports, peak_ports)


def _top_verilog(name: str, model, ops, edges: list[Edge], monitors: list[str], limit_ports: bool = False,
                 peak_ports: bool = True) -> str:
    graph_in = [e for e in edges if e.src is None]
    graph_out = [e for e in edges if e.dst is None]
    fifos = [e for e in edges if e.has_fifo]
    ports = ["input  wire ap_clk", "input  wire ap_rst_n"]
    for i, e in enumerate(graph_in):
        ports += [f"input  wire [{e.width - 1}:0] in{i}_V_TDATA", f"input  wire in{i}_V_TVALID",
                  f"output wire in{i}_V_TREADY"]
    for o, e in enumerate(graph_out):
        ports += [f"output wire [{e.width - 1}:0] out{o}_V_TDATA", f"output wire out{o}_V_TVALID",
                  f"input  wire out{o}_V_TREADY"]
    # peak occupancy of every FIFO, for sizing them by simulation
    if peak_ports:
        ports += [f"output wire [31:0] fifo{k}_maxcount" for k, _ in enumerate(fifos)]
    if limit_ports:
        ports += [f"input  wire [{count_bits(e.depth) - 1}:0] fifo{k}_limit" for k, e in enumerate(fifos)]
    widths = {e.tensor: e.width for e in edges}
    for k, t in enumerate(monitors):
        ports += [f"output wire [{widths[t] - 1}:0] mon{k}_TDATA", f"output wire mon{k}_TVALID"]
    body = []
    # the two ends of every stream: what the producer drives and what the consumer sees
    src_sig, dst_sig = {}, {}
    for i, e in enumerate(graph_in):
        dst_sig[e.tensor] = f"in{i}_V"
    for o, e in enumerate(graph_out):
        src_sig[e.tensor] = f"out{o}_V"
    for k, e in enumerate(fifos):
        s, d = f"s{k}", f"f{k}"
        src_sig[e.tensor], dst_sig[e.tensor] = s, d
        body.append(f"    // FIFO {k}: {e.tensor}, {e.width} bits, {e.beats_per_image} beats per image")
        for sig in (s, d):
            body.append(f"    wire [{e.width - 1}:0] {sig}_TDATA;  wire {sig}_TVALID;  wire {sig}_TREADY;")
        cbits = count_bits(e.depth)
        limit = f"fifo{k}_limit" if limit_ports else f"{cbits}'d0"
        if peak_ports:
            body += [f"    wire [{cbits - 1}:0] fifo{k}_peak;", f"    assign fifo{k}_maxcount = 32'(fifo{k}_peak);"]
        body += [
            f"    stream_fifo #(.DEPTH({e.depth}), .DATA_WIDTH({e.width}), "
            f".RAM_STYLE(\"{fifo_ram_style(e.depth, e.width)}\"), .LIMIT_PORT({int(limit_ports)})) fifo{k} (",
            "        .clk(ap_clk), .rst(!ap_rst_n),",
            f"        .idat({s}_TDATA), .ivld({s}_TVALID), .irdy({s}_TREADY),",
            f"        .odat({d}_TDATA), .ovld({d}_TVALID), .ordy({d}_TREADY),",
            f"        .limit({limit}),",
            f"        .count(), .maxcount({f'fifo{k}_peak' if peak_ports else ''})",
            "    );",
            "",
        ]
    for k, t in enumerate(monitors):
        body += [f"    // monitor {k}: beats of {t} as they leave their producer",
                 f"    assign mon{k}_TDATA = {src_sig[t]}_TDATA;",
                 f"    assign mon{k}_TVALID = {src_sig[t]}_TVALID && {src_sig[t]}_TREADY;", ""]
    for k, op in enumerate(ops):
        node = op.onnx_node
        conns = [".ap_clk(ap_clk)", ".ap_rst_n(ap_rst_n)"]
        for s, idx in enumerate(stream_inputs(op)):
            sig = dst_sig[node.input[idx]]
            conns += [f".in{s}_V_TDATA({sig}_TDATA)", f".in{s}_V_TVALID({sig}_TVALID)", f".in{s}_V_TREADY({sig}_TREADY)"]
        for port, t in enumerate(node.output):
            sig = src_sig[t]
            conns += [f".out{port}_V_TDATA({sig}_TDATA)", f".out{port}_V_TVALID({sig}_TVALID)",
                      f".out{port}_V_TREADY({sig}_TREADY)"]
        connected = {c[1:c.index("(")] for c in conns}
        conns += [f".{p}('0)" for p in module_inputs(op) if p not in connected]
        body.append(f"    // layer {k}: {node.name} ({node.op_type})")
        body.append(f"    {op.get_nodeattr('gen_top_module')} layer{k} (")
        body.append(",\n".join("        " + c for c in conns))
        body.append("    );")
        body.append("")
    header = (
        f"// {name}: the dataflow partition as one module, layers in graph order with FIFOs between them.\n"
        f"// Generated by wrn1bit hw.stitch from graph '{model.graph.name}' ({len(ops)} layers, "
        f"{len(fifos)} FIFOs); do not edit, regenerate.\n"
    )
    return header + f"module {name} (\n" + ",\n".join("    " + p for p in ports) + "\n);\n\n" + "\n".join(body) + "endmodule\n"
