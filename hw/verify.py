"""Whole-accelerator check: the stitched RTL of a model's dataflow partition, simulated with
Verilator on real test images, against FINN's python execution of the same graph and against
the Brevitas model's integers.

Steps (``verify_accelerator``):
  1. the vendor-free FINN build (flows.build) gives the folded graph with this project's RTL in
     place of FINN's HLS layers, and every layer's generated HDL (codegen.onnx);
  2. size the FIFOs by simulation (hw/fifo_sizing.py): deep FIFOs, peak occupancy with the input
     flooding and paced at one image per II, then the smallest cap on the FIFOs outside the
     residual joins that keeps the deep design's II;
  3. rebuild with every stream between layers monitored, run all images with random input gaps and output back-pressure: labels and the
     class-score integers (the stream into LabelSelect) must equal the python execution and
     Brevitas; every monitored layer output of the first images must equal the python context;
  4. a run without gaps measures cycles per image (steady-state II, latency) next to FINN's
     estimate; the report goes to <build>/verify_rtl.{json,md}.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qonnx.transformation.base import Transformation

from hw.fifo_sizing import FIFO_MARGIN, SHRINK_CAPS, SIZING_IMAGES, size_fifos, steady_interval
from train.atomic import write_json, write_text
from train.errors import UserError

LAYER_IMAGES = 3  # images whose every layer output is compared (all images: labels and scores)


def python_reference(model, x_nhwc: np.ndarray) -> list[dict]:
    """FINN's python execution of the hardware graph, full context per image."""
    from qonnx.core.onnx_exec import execute_onnx

    ref = model.transform(PythonExec())
    iname = ref.graph.input[0].name
    return [execute_onnx(ref, {iname: x_nhwc[i:i + 1]}, return_full_exec_context=True) for i in range(len(x_nhwc))]


class PythonExec(Transformation):
    """Every node to its python reference: FINN's RTL layers run their base op's python for
    exec_mode 'cppsim', this project's layers for an empty exec_mode."""

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        from hw.custom_op import PROJECT_RTL_OPS

        for node in model.graph.node:
            getCustomOp(node).set_nodeattr("exec_mode", "" if node.op_type in PROJECT_RTL_OPS else "cppsim")
        return model, False


def verify_accelerator(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None, images: int = 100,
                       gap_prob: float = 0.1, stall_prob: float = 0.1, seed: int = 0) -> dict:
    """`make verify`'s whole-accelerator half: build, simulate, compare, report."""
    import torch

    from flows.boards import load_board
    from flows.build import build, build_dir_for
    from flows.exactness import brevitas_reference
    from flows.finn_env import finn_log_to
    from flows.verify import load_brevitas, sample_test_images
    from qonnx.core.modelwrapper import ModelWrapper

    if images < 3:
        raise UserError(f"--images must be at least 3 (the pipeline fills on the first), got {images}")
    model_path = Path(model_path)
    board = load_board(board_name)
    checkpoint = Path(checkpoint) if checkpoint else model_path.with_suffix(".pt")
    brevitas, data_cfg = load_brevitas(checkpoint)
    x, dataset = sample_test_images(data_cfg, images)
    build(model_path, board_name, out, vendor_free=True)
    bdir = build_dir_for(model_path, board, Path(out))
    with finn_log_to(bdir / "finn.log"):
        model = ModelWrapper(str(bdir / "codegen.onnx"))
        xa = np.asarray(x.numpy() if isinstance(x, torch.Tensor) else x)
        refs = brevitas_reference(brevitas, torch.as_tensor(xa))
        result = simulate_accelerator(model, xa, board, bdir / "rtl_sim", gap_prob, stall_prob, seed)
    result.update({"model": str(model_path), "checkpoint": str(checkpoint), "dataset": dataset})
    compare_brevitas(result, refs)
    write_reports(bdir, result)
    return result


def compare_brevitas(result: dict, refs) -> None:
    """Add the Brevitas comparison (labels, class-score integers) to a simulation result."""
    labels, scores = np.asarray(result.pop("_labels")), result.pop("_scores")
    result["labels_equal_brevitas"] = int((labels == np.array([r[0] for r in refs])).sum())
    if scores is not None:
        result["scores_equal_brevitas"] = int((scores == np.stack([r[1] for r in refs])).all(axis=1).sum())
    n = result["images"]
    result["passed"] = result["passed"] and result["labels_equal_brevitas"] == n and (
        scores is None or result["scores_equal_brevitas"] == n)


def simulate_accelerator(model, x_uint8: np.ndarray, board, work_dir: Path, gap_prob: float = 0.1,
                         stall_prob: float = 0.1, seed: int = 0, fifo_caps=SHRINK_CAPS) -> dict:
    """Stitch the code-generated partition ``model``, size its FIFOs by simulation, run the
    images (N x C x H x W uint8) and compare with FINN's python execution of ``model``.
    ``fifo_caps``: the FIFO depth caps tried after the deep sizing run (hw/fifo_sizing.py).
    The result keeps the simulated labels/scores under ``_labels``/``_scores``."""
    from flows.exactness import _graph_input
    from hw.sim.axis import pack_words, unpack_words
    from hw.stitch import link_name, stitch

    images = len(x_uint8)
    timings = {}
    xin = np.concatenate([_graph_input(model, x_uint8[i:i + 1]) for i in range(images)])

    last = model.graph.node[-1]
    scores_t = last.input[0] if last.op_type.startswith("LabelSelect") else None
    internal = [n.output[0] for n in model.graph.node[:-1]] + [
        t for n in model.graph.node if n.op_type.startswith("DuplicateStreams") for t in n.output[1:]]
    hw_dir = Path(work_dir)
    part, clk = board.part, board.clock_ns

    # 1) FIFO depths by simulation (hw/fifo_sizing.py): deep FIFOs, peaks, shrink; stitching
    #    first also names any node without RTL before the slower work below
    t0 = time.perf_counter()
    st = stitch(model, hw_dir / "sizing", default_depth=None, fpgapart=part, clk_ns=clk)
    in_edge = next(e for e in st.edges if e.src is None)
    elems_in = st.ops[in_edge.dst[0]].get_folded_input_shape(0)[-1]
    in_dt = model.get_tensor_datatype(model.graph.input[0].name)
    feed_all = pack_words(xin.reshape(-1, elems_in).astype(np.int64), in_dt.bitwidth(), st.inputs[0].width)
    out_edge = next(e for e in st.edges if e.dst is None)
    reps = -(-SIZING_IMAGES // images)  # the images repeated up to SIZING_IMAGES or more
    sizing = size_fifos(
        st, lambda depths, tag: stitch(model, hw_dir / "sizing" / tag, depths=depths, fpgapart=part, clk_ns=clk),
        np.concatenate([feed_all] * reps), reps * images * out_edge.beats_per_image, reps * images, fifo_caps)
    depths, peaks = sizing.depths, sizing.peaks
    timings["fifo_sizing_s"] = round(time.perf_counter() - t0, 1)
    t0 = time.perf_counter()
    ctxs = python_reference(model, xin)
    timings["python_reference_s"] = round(time.perf_counter() - t0, 2)

    # 2) sized design, every internal stream monitored
    t0 = time.perf_counter()
    st = stitch(model, hw_dir / "sized", depths=depths, fpgapart=part, clk_ns=clk, monitors=internal)
    design = st.design()
    design.build()
    timings["build_sized_s"] = round(time.perf_counter() - t0, 1)
    k_layers = min(LAYER_IMAGES, images)
    mon_beats = {f"mon{k}": (images if t == scores_t else k_layers) * st.edge(t).beats_per_image
                 for k, t in enumerate(internal)}
    t0 = time.perf_counter()
    r = design.run({"in0_V": feed_all}, {"out0_V": images * out_edge.beats_per_image}, gap_prob=gap_prob,
                   stall_prob=stall_prob, seed=seed, monitor_beats=mon_beats)
    timings["sim_with_gaps_s"] = round(time.perf_counter() - t0, 2)
    timings["sim_with_gaps_cycles"] = r.cycles
    out_dt = model.get_tensor_datatype(model.graph.output[0].name)
    labels = unpack_words(r.outputs["out0_V"], out_dt.bitwidth(), 1, out_dt.signed()).reshape(images, -1)[:, 0]

    # 3) compare
    result = {"board": board.name, "images": images, "gap_prob": gap_prob, "stall_prob": stall_prob,
              "fifo_depths": depths, "fifo_peaks_deep": peaks, "fifo_sizing": sizing.summary(), "_labels": labels.tolist(), "_scores": None,
              # the same depths by the layers each FIFO joins, which later builds of the graph share
              # (hw.synth_accel reads them for its resource estimate)
              "fifos": [{"link": link_name(e, st.ops), "width": e.width, "depth": depths[e.tensor]}
                        for e in st.fifo_edges()]}
    py_labels = np.array([int(np.asarray(c[model.graph.output[0].name]).reshape(-1)[0]) for c in ctxs])
    result["labels_equal_python"] = int((labels == py_labels).sum())
    layers, streams = [], {}
    for k, t in enumerate(internal):
        e = st.edge(t)
        op = st.ops[e.src[0]]
        dt = op.get_output_datatype(e.src[1])  # InsertDWC leaves its new tensors unannotated
        got = unpack_words(r.monitors[f"mon{k}"], dt.bitwidth(), op.get_folded_output_shape(e.src[1])[-1], dt.signed())
        streams[t] = got.reshape(images if t == scores_t else k_layers, -1)
        if dt.name == "BIPOLAR":
            streams[t] = 2 * streams[t] - 1
        want = np.stack([np.asarray(c[t]).reshape(-1) for c in ctxs[:k_layers]]).astype(np.int64)
        layers.append({"layer": op.onnx_node.name, "op_type": op.onnx_node.op_type, "tensor": t,
                       "equal": bool(np.array_equal(streams[t][:k_layers], want)), "images": k_layers,
                       "finn_cycles_estimate": int(op.get_exp_cycles())})
    if scores_t is not None:
        py_sc = np.stack([np.asarray(c[scores_t]).reshape(-1) for c in ctxs]).astype(np.int64)
        result["scores_equal_python"] = int((streams[scores_t] == py_sc).all(axis=1).sum())
        result["_scores"] = streams[scores_t]

    # 4) timing without gaps: II from the output's last beat per image, latency of image 0
    t0 = time.perf_counter()
    r0 = design.run({"in0_V": feed_all}, {"out0_V": images * out_edge.beats_per_image},
                    monitor_beats={f"mon{k}": images * st.edge(t).beats_per_image for k, t in enumerate(internal)})
    timings["sim_nogap_s"] = round(time.perf_counter() - t0, 2)
    timings["sim_nogap_cycles"] = r0.cycles
    timings["sim_cycles_per_s"] = round(r0.cycles / max(1e-9, timings["sim_nogap_s"]))
    ends = r0.out_cycles["out0_V"].reshape(images, -1)[:, -1].astype(np.int64)
    ii = steady_interval(ends)
    latency = int(ends[0] - int(r0.in_cycles["in0_V"][0]))
    for k, row in enumerate(layers):
        row["sim_cycles_per_image"] = steady_interval(r0.monitor_cycles[f"mon{k}"].reshape(images, -1)[:, -1])
    est = max(row["finn_cycles_estimate"] for row in layers)
    result.update({
        "layers": layers, "cycles_per_image": ii, "latency_cycles": latency, "finn_max_cycles_estimate": est,
        "fps_at_board_clock": round(board.clock_mhz * 1e6 / ii, 1), "clock_mhz": board.clock_mhz,
        "timings": timings,
    })
    result["passed"] = (result["labels_equal_python"] == images
                        and result.get("scores_equal_python", images) == images
                        and all(row["equal"] for row in layers))
    return result


def fifo_sizing_markdown(r: dict) -> str:
    fs = r.get("fifo_sizing")
    depths = ", ".join(f"{t}: {d}" for t, d in r["fifo_depths"].items())
    if fs is None:  # a report written before the shrink step
        return f"FIFO depths sized by simulation (peak occupancy with deep FIFOs): {depths}"
    tried = "; ".join((f"cap {t['cap']}" if "cap" in t else f"{t['depths']} depths") + ": "
                      + (f"II {t['ii']:,.0f}" if "ii" in t else "stalled")
                      + (" (kept)" if t["kept"] else "") for t in fs["tried"]) or "none"
    rule = (f"peak occupancy with the input paced at one image per II + {FIFO_MARGIN}"
            if fs.get("base") == "paced"  # reports written before the paced run have no base
            else f"peak occupancy + {FIFO_MARGIN}")
    kept = (f"{rule}, capped at {fs['cap']} beats outside the {len(fs['joins'])} residual-join inputs"
            if fs["cap"] is not None else rule)
    paced = f", paced: {fs['paced_depth_beats']:,}" if "paced_depth_beats" in fs else ""
    return (f"FIFO depths sized by simulation: deep FIFOs give II {fs['deep_ii']:,.0f} cycles/image; "
            f"tried: {tried}; kept: {kept}, {fs['depth_beats']:,} beats in all "
            f"(peak depths with the input flooding: {fs['peak_depth_beats']:,}{paced}). Depths: {depths}")


def write_reports(bdir: Path, result: dict) -> None:
    write_json(bdir / "verify_rtl.json", result)
    write_text(bdir / "verify_rtl.md", render_markdown(result))


def checks_table(r: dict) -> list[str]:
    """The Markdown rows of a whole-accelerator result's label and class-score comparisons."""
    n = r["images"]
    rows = ["| check | equal |", "|---|---|",
            f"| labels vs FINN python execution | {r['labels_equal_python']}/{n} |",
            f"| labels vs Brevitas | {r['labels_equal_brevitas']}/{n} |"]
    if "scores_equal_python" in r:
        rows += [f"| class-score integers vs FINN python execution | {r['scores_equal_python']}/{n} |",
                 f"| class-score integers vs Brevitas | {r['scores_equal_brevitas']}/{n} |"]
    return rows


def render_markdown(r: dict) -> str:
    n = r["images"]
    lines = [
        f"# RTL simulation of the whole accelerator ({Path(r['model']).name}, {r['board']})", "",
        f"**{'PASSED' if r['passed'] else 'FAILED'}** on {n} {r['dataset']} test images, Verilator, "
        f"input gaps {r['gap_prob']:.0%} / output back-pressure {r['stall_prob']:.0%}.", "",
        *checks_table(r),
    ]
    lines += ["", f"Cycles per image (steady state): **{r['cycles_per_image']:,}** (FINN's estimate for the "
              f"slowest layer: {r['finn_max_cycles_estimate']:,}); latency {r['latency_cycles']:,} cycles; "
              f"{r['fps_at_board_clock']:,.0f} FPS at {r['clock_mhz']:.0f} MHz.", "",
              "| layer | op | output equal | sim cycles/image | FINN estimate |", "|---|---|---|---:|---:|"]
    for row in r["layers"]:
        lines.append(f"| {row['layer']} | {row['op_type']} | {'yes' if row['equal'] else '**NO**'} "
                     f"({row['images']} images) | {row['sim_cycles_per_image']:,} | {row['finn_cycles_estimate']:,} |")
    lines += ["", fifo_sizing_markdown(r), ""]
    return "\n".join(lines)
