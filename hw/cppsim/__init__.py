"""cppsim without Vitis: FINN's HLS layers compiled with g++ and run as C++ programs (FINN's
exec_mode "cppsim"); the header folder that stands in for Vitis is hw/cppsim/toolchain.py.

``compile_cppsim`` runs FINN's own PrepareCppSim / CompileCppSim on every HLS node;
``execute_graph`` runs a compiled graph node by node (HLS nodes by ``run_cppsim_node``, FINN's
execute_node, the others by qonnx or a runner given, e.g. Verilator); ``execute_cppsim`` runs
it on a feed of several images, image by image where the graph is declared for one (as the
layers in ONE_IMAGE_PER_CALL need).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from common.errors import UserError
from hw.cppsim.toolchain import (  # noqa: F401  (the package's interface)
    VITIS_LINK_LIBS,
    CppSimBuildError,
    CppSimUnavailable,
    finn_hlslib_dir,
    include_flags,
    missing_cppsim_tools,
    missing_header_tools,
    require_cppsim,
    toolchain_dir,
    vitis_free_env,
)

# FINN 1.6.1 emits these layers' C++ for one image per call (``AccPool_Batch<...>(in0_V, out0_V,
# 1)``, ``LabelSelect_Batch<...>(in0_V, out0_V, 1)``, ``Pool_batch<one image's beats, K>``): in
# hardware the block restarts for every image (ap_ctrl_none), while FINN's cppsim test bench
# calls it once per run, so a run on several images reads only the first and the outputs after
# it are left empty. They are run image by image (execute_cppsim).
ONE_IMAGE_PER_CALL = frozenset({"GlobalAccPool_hls", "LabelSelect_hls", "Pool_hls"})


def hls_nodes(model) -> list:
    from finn.util.fpgadataflow import is_hls_node

    return [n for n in model.graph.node if is_hls_node(n)]


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln
    return lines[0] if lines else "no compiler output"


def compile_cppsim(model, toolchain: str | Path | None = None):
    """FINN's PrepareCppSim and CompileCppSim on every HLS node of ``model``, against finn-hlslib
    and the generated header folder; the HLS nodes' exec_mode becomes "cppsim" (other nodes are
    left as they are). Returns the transformed model; run it with ``execute_cppsim``."""
    from finn.transformation.fpgadataflow.compile_cppsim import CompileCppSim
    from finn.transformation.fpgadataflow.prepare_cppsim import PrepareCppSim
    from qonnx.custom_op.registry import getCustomOp

    require_cppsim()
    nodes = hls_nodes(model)
    if not nodes:
        raise UserError("compile_cppsim: the graph has no HLS node (cppsim runs FINN's HLS layers only)")
    unnamed = [n.op_type for n in nodes if not n.name]
    if unnamed:
        raise UserError(f"compile_cppsim: unnamed HLS node(s) {unnamed}; apply GiveUniqueNodeNames first")
    with vitis_free_env(toolchain):
        model = model.transform(PrepareCppSim())
        try:
            model = model.transform(CompileCppSim())
        except subprocess.CalledProcessError as e:
            raise CppSimBuildError(f"g++ failed on FINN's cppsim code: {_first_error(e.stderr or e.output)} "
                                   f"(compile script: {' '.join(str(c).strip() for c in e.cmd)})") from None
    for node in hls_nodes(model):
        op = getCustomOp(node)
        exe = Path(op.get_nodeattr("executable_path") or "")
        if not exe.is_file():
            script = Path(op.get_nodeattr("code_gen_dir_cppsim")) / "compile.sh"
            raise CppSimBuildError(f"{node.name}: no cppsim executable after compiling ({script})")
        op.set_nodeattr("exec_mode", "cppsim")
    return model


def run_cppsim_node(model, node, ctx: dict) -> None:
    """One compiled HLS node on ``ctx`` (in place), by FINN's execute_node."""
    from qonnx.custom_op.registry import getCustomOp

    op = getCustomOp(node)
    # FINN's execute_node asserts the node's own input shapes (a producer may have written
    # (1, 1, 1, C) where LabelSelect reads (1, C)) and writes into existing output entries
    local = dict(ctx)
    for i, t in enumerate(node.input):
        if model.get_initializer(t) is None:  # a stream, not the layer's weights or thresholds
            local[t] = np.asarray(ctx[t]).reshape(op.get_normal_input_shape(i))
    for i, o in enumerate(node.output):
        local[o] = np.zeros(op.get_normal_output_shape(i), dtype=np.float32)
    op.execute_node(local, model.graph)
    ctx.update({o: local[o] for o in node.output})


def execute_graph(model, feed: dict, run_other=None) -> dict:
    """One run of a compiled graph in node order: HLS nodes by run_cppsim_node, the others by
    ``run_other(node, ctx)`` (default: qonnx's execute_node); the full context."""
    from qonnx.core.onnx_exec import execute_node
    from qonnx.util.basic import get_by_name

    if run_other is None:
        opset = get_by_name(model.model.opset_import, "", "domain")

        def run_other(node, ctx):
            execute_node(node, ctx, model.graph, opset.version if opset else 11)

    hls = {n.name for n in hls_nodes(model)}
    ctx = dict(feed)
    ctx.update({t.name: model.get_initializer(t.name) for t in model.graph.initializer})
    for node in model.graph.node:
        if node.name in hls:
            run_cppsim_node(model, node, ctx)
        else:
            run_other(node, ctx)
    return ctx


def execute_cppsim(model, feed: dict) -> dict:
    """Run a compiled model (compile_cppsim) on ``feed``; every output tensor by name. A graph
    declared for one image (axis 0 of its input is 1) runs image by image over a feed of
    several; a graph holding a ONE_IMAGE_PER_CALL layer must be declared for one image."""
    declared = model.get_tensor_shape(model.graph.input[0].name)[0]
    images = {len(x) for x in feed.values()}
    if len(images) != 1:
        raise UserError(f"execute_cppsim: inputs disagree on the number of images {sorted(images)}")
    n = images.pop()
    one_image = sorted({nd.op_type for nd in model.graph.node} & ONE_IMAGE_PER_CALL)
    if declared != 1 and one_image:
        raise UserError(f"execute_cppsim: {', '.join(one_image)} handle one image per cppsim call; declare the "
                        f"graph for one image (batch 1, not {declared}) and pass the images in one feed")
    outs = [o.name for o in model.graph.output]
    if declared == n:
        ctx = execute_graph(model, feed)
        return {o: ctx[o] for o in outs}
    if declared != 1:
        raise UserError(f"execute_cppsim: the graph is declared for {declared} images, the feed has {n}")
    runs = [execute_graph(model, {k: x[i:i + 1] for k, x in feed.items()}) for i in range(n)]
    return {o: np.concatenate([r[o] for r in runs]) for o in outs}
