"""The whole HLS accelerator, layer by layer: FINN's HLS layers in cppsim, the layers that exist
only as RTL (FINN's sliding windows, padding, width converters, thresholds) in Verilator, against
FINN's python execution of the same graph.

``LayerwiseSim`` compiles every HLS node for cppsim (FINN's PrepareCppSim / CompileCppSim) and
builds a Verilator model of every RTL node; ``run_and_compare`` runs the graph in order, per
image, each node on the outputs the simulated nodes before it produced (not on the python
reference's), so an error anywhere reaches the labels; labels and output integers must equal
FINN's python execution, and every layer's output of the first images must equal the python
context.

A depthwise sliding window sends its window in [channel fold][kernel][PE] order where FINN's
python tensor is [kernel][channel] (FINN's ConvolutionInputGenerator_rtl says so); its output
is compared in the order it is sent (``window_stream_order``). Its consumer (Pool_hls) reads
that order, so the values pass between them unchanged.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from common.errors import UserError

LAYER_IMAGES = 3  # images whose every layer output is compared (all images: labels and scores)


def window_stream_order(op, x: np.ndarray) -> np.ndarray:
    """A depthwise sliding window's output in the order the hardware sends it (identity for a
    standard window, whose stream order is FINN's tensor order)."""
    if not (op.onnx_node.op_type.startswith("ConvolutionInputGenerator") and op.get_nodeattr("depthwise")):
        return x
    k2 = int(np.prod(op.get_nodeattr("ConvKernelDim")))
    ch, pe = op.get_nodeattr("IFMChannels"), op.get_nodeattr("SIMD")
    lead = x.shape[:-1]
    return x.reshape(*lead, k2, ch // pe, pe).swapaxes(-3, -2).reshape(*lead, k2 * ch)


def base_op_reference(model, xin: np.ndarray) -> list[dict]:
    """FINN's python execution of the graph: every specialized node (``*_hls``, ``*_rtl``) back to
    its base op, whose execute_node is python (FINN's HLS variants have no python path); the
    full context per image."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx

    ref = ModelWrapper(copy.deepcopy(model.model))
    for node in ref.graph.node:
        base, _, variant = node.op_type.rpartition("_")
        if variant in ("hls", "rtl"):
            node.op_type, node.domain = base, "finn.custom_op.fpgadataflow"
    iname = ref.graph.input[0].name
    return [execute_onnx(ref, {iname: xin[i:i + 1]}, return_full_exec_context=True) for i in range(len(xin))]


class LayerwiseSim:
    """A code-generated dataflow graph ready to run node by node: HLS nodes compiled for cppsim,
    each RTL node's Verilator model built once."""

    def __init__(self, model, work_dir: Path):
        from qonnx.custom_op.registry import getCustomOp

        from hw.cppsim import compile_cppsim, hls_nodes
        from hw.sim.node import ensure_hdl, node_design

        self.timings = {}
        t0 = time.perf_counter()
        self.model = compile_cppsim(model)
        self.timings["cppsim_compile_s"] = round(time.perf_counter() - t0, 1)
        hls = {n.name for n in hls_nodes(self.model)}
        t0 = time.perf_counter()
        self.designs = {}
        for node in self.model.graph.node:
            if node.name not in hls:
                op = ensure_hdl(self.model, node, code_dir=str(work_dir / "hdl" / node.name))
                design = node_design(op, cache_dir=work_dir / "verilator")
                design.build()
                self.designs[node.name] = (op, design)
        self.timings["verilator_build_s"] = round(time.perf_counter() - t0, 1)
        self.ops = {n.name: getCustomOp(n) for n in self.model.graph.node}
        self.hls_layers, self.rtl_layers = len(hls), len(self.designs)

    def run(self, x: np.ndarray, seed: int = 0) -> dict:
        """One image (the graph input's shape) through every node; the full context."""
        from hw.cppsim import execute_graph
        from hw.sim.node import simulate_node, stream_inputs

        if x.shape[0] != 1:
            raise UserError(f"LayerwiseSim.run: one image per call, got {x.shape[0]}")

        def verilator(node, ctx):
            op, design = self.designs[node.name]
            outs, _ = simulate_node(op, [ctx[node.input[i]] for i in stream_inputs(op)], design,
                                    gap_prob=0.2, stall_prob=0.2, seed=seed)
            ctx.update(zip(node.output, outs))

        return execute_graph(self.model, {self.model.graph.input[0].name: x.astype(np.float32)}, verilator)


def run_and_compare(sim: LayerwiseSim, xin: np.ndarray, seed: int = 0, progress: bool = True,
                    label_of=None) -> dict:
    """Every image's integers ``xin`` (in the graph's input layout, NHWC) through ``sim``; labels,
    output integers and layer outputs against FINN's python execution of the same graph. The
    result keeps the labels / output integers under ``_labels`` / ``_scores``; ``label_of(scores)``
    gives the label where the graph does not end in LabelSelect (default: the arg max)."""
    model = sim.model
    out_t = model.graph.output[0].name
    last = model.graph.node[-1]
    label_out = last.op_type.startswith("LabelSelect")
    scores_t = last.input[0] if label_out else out_t
    n = len(xin)
    t0 = time.perf_counter()
    refs = base_op_reference(model, xin)
    python_s = time.perf_counter() - t0
    labels, scores = [], []
    layer_equal = {node.name: 0 for node in model.graph.node}
    k_layers = min(LAYER_IMAGES, n)
    t0 = time.perf_counter()
    for i in tqdm(range(n), desc="cppsim + Verilator", unit="img", disable=not progress):
        ctx = sim.run(xin[i:i + 1], seed=seed + i)
        scores.append(np.asarray(ctx[scores_t]).reshape(-1).astype(np.int64))
        if label_out:
            labels.append(int(np.asarray(ctx[out_t]).reshape(-1)[0]))
        else:
            labels.append(label_of(scores[-1]) if label_of is not None else int(np.argmax(scores[-1])))
        if i < k_layers:
            for node in model.graph.node:
                op = sim.ops[node.name]
                got = np.asarray(ctx[node.output[0]]).reshape(-1)  # shapes of a tensor differ by unit axes
                want = window_stream_order(op, np.asarray(refs[i][node.output[0]])).reshape(-1)
                layer_equal[node.name] += int(np.array_equal(got.astype(np.int64), want.astype(np.int64)))
    sim_s = time.perf_counter() - t0
    py_sc = np.stack([np.asarray(c[scores_t]).reshape(-1) for c in refs]).astype(np.int64)
    scores = np.stack(scores)
    result = {
        "images": n, "python_images": n, "hls_layers": sim.hls_layers, "rtl_layers": sim.rtl_layers,
        "scores_equal_python": int((scores == py_sc).all(axis=1).sum()),
        "layers": [{"layer": node.name, "op_type": node.op_type,
                    "sim": "Verilator" if node.name in sim.designs else "cppsim",
                    "equal": layer_equal[node.name] == k_layers, "images": k_layers} for node in model.graph.node],
        "_labels": labels, "_scores": scores,
        "timings": {"python_reference_s": round(python_s, 1), "simulation_s": round(sim_s, 1),
                    "seconds_per_image": round(sim_s / n, 3)},
    }
    if label_out:
        py_labels = np.array([int(np.asarray(c[out_t]).reshape(-1)[0]) for c in refs])
        result["labels_equal_python"] = int((np.array(labels) == py_labels).sum())
    else:  # the label follows from the integers through the float tail
        result["labels_equal_python"] = result["scores_equal_python"]
    result["passed"] = (result["labels_equal_python"] == n and result["scores_equal_python"] == n
                        and all(row["equal"] for row in result["layers"]))
    return result
