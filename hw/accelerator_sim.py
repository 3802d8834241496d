"""The whole accelerator in Verilator: the stitched RTL of a code-generated dataflow partition,
its FIFOs sized by simulation, run on integer inputs and compared with FINN's python execution
of the same graph.

``simulate_accelerator``:
  1. size the FIFOs by simulation (hw/fifo_sizing.py) on the first images;
  2. rebuild with every stream between layers monitored and run the first GAP_IMAGES images with
     random input gaps and output back-pressure: every monitored layer output of the first
     LAYER_IMAGES images must equal the python context;
  3. a run without gaps on the first TIMING_IMAGES images measures cycles per image;
  4. the rest of the images run without gaps and without monitors but the class scores', split
     over ``processes`` simulator processes on disjoint image ranges (each from reset: a stream's
     outputs do not depend on the images before it, so the split changes no value);
  5. labels and output integers of the first PYTHON_IMAGES against FINN's python execution.
What the integers are compared with beyond FINN's graph (the QONNX model, Brevitas) is the
flow's business: flows/verify_rtl.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from qonnx.transformation.base import Transformation
from tqdm import tqdm

from common.boards import Board
from hw.fifo_sizing import SHRINK_CAPS, SIZING_IMAGES, size_fifos, steady_interval

LAYER_IMAGES = 3     # images whose every layer output is compared
GAP_IMAGES = 100     # images run with input gaps and back-pressure, every stream monitored
RANGE_IMAGES = 500   # images per simulator run after those (several runs per process)
TIMING_IMAGES = 20   # images of the no-gap run that measures cycles per image
PYTHON_IMAGES = 100  # images also compared with FINN's python execution of the graph


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


def equal_rows(a: np.ndarray, b: np.ndarray) -> int:
    return int((a == b).all(axis=1).sum()) if a.shape == b.shape else 0


def _out_values(st, words: np.ndarray, out_dt, images: int) -> np.ndarray:
    """The output stream's words as integers, one row per image."""
    from hw.sim.axis import unpack_words

    out_edge = next(e for e in st.edges if e.dst is None)
    per_beat = st.ops[out_edge.src[0]].get_folded_output_shape(out_edge.src[1])[-1]
    return unpack_words(words, out_dt.bitwidth(), per_beat, out_dt.signed()).reshape(images, -1)


def _monitor_values(st, tensor: str, words: np.ndarray, images: int) -> np.ndarray:
    """A monitored stream's words as integers, one row per image (BIPOLAR as -1 / +1)."""
    from hw.sim.axis import unpack_words

    e = st.edge(tensor)
    op = st.ops[e.src[0]]
    dt = op.get_output_datatype(e.src[1])  # InsertDWC leaves its new tensors unannotated
    v = unpack_words(words, dt.bitwidth(), op.get_folded_output_shape(e.src[1])[-1], dt.signed()).reshape(images, -1)
    return 2 * v - 1 if dt.name == "BIPOLAR" else v


def _run_range(design, feed: np.ndarray, out_beats: int, mon: str | None, mon_beats: int):
    """One simulator run without gaps (a worker of ``run_images``): output words, monitor words."""
    r = design.run({"in0_V": feed}, {"out0_V": out_beats}, monitor_beats={mon: mon_beats} if mon else None)
    return r.outputs["out0_V"], (r.monitors[mon] if mon else None), r.cycles


def run_images(design, feeds: list, out_beats: list, mon: str | None, mon_beats: list, processes: int,
               progress=None):
    """Image ranges through fresh copies of ``design`` in ``processes`` processes at a time, in
    order; ``progress(i)`` is called as range i finishes."""
    if processes == 1 or len(feeds) == 1:
        out = []
        for i, (feed, beats, mbeats) in enumerate(zip(feeds, out_beats, mon_beats)):
            out.append(_run_range(design, feed, beats, mon, mbeats))
            if progress:
                progress(i)
        return out
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    with ProcessPoolExecutor(processes, mp_context=mp.get_context("fork")) as pool:
        futures = {pool.submit(_run_range, design, f, o, mon, m): i
                   for i, (f, o, m) in enumerate(zip(feeds, out_beats, mon_beats))}
        for fut in as_completed(futures):
            if progress:
                progress(futures[fut])
        return [fut.result() for fut in sorted(futures, key=futures.get)]


def simulate_accelerator(model, xin: np.ndarray, board: Board, work_dir: Path, gap_prob: float = 0.1,
                         stall_prob: float = 0.1, seed: int = 0, fifo_caps=SHRINK_CAPS, label_of=None,
                         processes: int = 1, gap_images: int = GAP_IMAGES, progress: bool = True,
                         range_images: int = RANGE_IMAGES) -> dict:
    """Stitch the code-generated partition ``model``, size its FIFOs by simulation, run the
    integer inputs ``xin`` (in the partition's input layout, NHWC) and compare with FINN's python
    execution of ``model``. ``fifo_caps``: the FIFO depth caps tried after the deep sizing run
    (hw/fifo_sizing.py). ``label_of(scores)``: the label of one image's output integers where the
    graph does not end in LabelSelect (the host's float tail; default: the arg max).
    The first ``gap_images`` images run with gaps and back-pressure, the rest without, in
    ``processes`` simulator processes, ``range_images`` per run (a progress bar on stderr unless
    ``progress`` is False).
    The result keeps the simulated labels / output integers under ``_labels`` / ``_scores``."""
    from hw.sim.axis import pack_words
    from hw.stitch import link_name, stitch

    images = len(xin)
    timings = {}

    last = model.graph.node[-1]
    label_out = last.op_type.startswith("LabelSelect")
    scores_t = last.input[0] if label_out else model.graph.output[0].name
    internal = [n.output[0] for n in model.graph.node[:-1]] + [
        t for n in model.graph.node if n.op_type.startswith("DuplicateStreams") for t in n.output[1:]]
    hw_dir = Path(work_dir)
    part, clk = board.part, board.clock_ns

    # 1) FIFO depths by simulation (hw/fifo_sizing.py) on the first images: deep FIFOs, peaks,
    #    shrink; stitching first also names any node without RTL before the slower work below
    t0 = time.perf_counter()
    st = stitch(model, hw_dir / "sizing", default_depth=None, fpgapart=part, clk_ns=clk, limit_ports=True)
    in_edge = next(e for e in st.edges if e.src is None)
    elems_in = st.ops[in_edge.dst[0]].get_folded_input_shape(0)[-1]
    in_dt = model.get_tensor_datatype(model.graph.input[0].name)
    in_beats = xin[:1].size // elems_in
    feed_all = pack_words(xin.reshape(-1, elems_in).astype(np.int64), in_dt.bitwidth(), st.inputs[0].width)
    out_edge = next(e for e in st.edges if e.dst is None)
    obeats = out_edge.beats_per_image
    n_size = min(images, SIZING_IMAGES)
    reps = -(-SIZING_IMAGES // n_size)  # the first images repeated up to SIZING_IMAGES or more
    sizing = size_fifos(
        st, np.concatenate([feed_all[:n_size * in_beats]] * reps), reps * n_size * obeats, reps * n_size, fifo_caps)
    depths, peaks = sizing.depths, sizing.peaks
    timings["fifo_sizing_s"] = round(time.perf_counter() - t0, 1)
    n_py = min(images, PYTHON_IMAGES)
    t0 = time.perf_counter()
    ctxs = python_reference(model, xin[:n_py])
    timings["python_reference_s"] = round(time.perf_counter() - t0, 2)

    # 2) sized design, every internal stream monitored; the first images with gaps / back-pressure
    t0 = time.perf_counter()
    st = stitch(model, hw_dir / "sized", depths=depths, fpgapart=part, clk_ns=clk, monitors=internal)
    design = st.design()
    design.build()
    timings["build_sized_s"] = round(time.perf_counter() - t0, 1)
    n_gap = min(images, gap_images)
    k_layers = min(LAYER_IMAGES, images)
    mon_beats = {f"mon{k}": (n_gap if t == scores_t else k_layers) * st.edge(t).beats_per_image
                 for k, t in enumerate(internal)}
    t0 = time.perf_counter()
    r = design.run({"in0_V": feed_all[:n_gap * in_beats]}, {"out0_V": n_gap * obeats}, gap_prob=gap_prob,
                   stall_prob=stall_prob, seed=seed, monitor_beats=mon_beats)
    timings["sim_with_gaps_s"] = round(time.perf_counter() - t0, 2)
    timings["sim_with_gaps_cycles"] = r.cycles
    out_dt = model.get_tensor_datatype(model.graph.output[0].name)
    outs = [_out_values(st, r.outputs["out0_V"], out_dt, n_gap)]

    # 3) compare the layers with the python contexts
    result = {"board": board.name, "images": images, "gap_prob": gap_prob, "stall_prob": stall_prob,
              "gap_images": n_gap, "python_images": n_py, "processes": processes,
              "fifo_depths": depths, "fifo_peaks_deep": peaks, "fifo_sizing": sizing.summary(),
              # the same depths by the layers each FIFO joins, which later builds of the graph share
              # (the yosys estimate reads them for its resource estimate)
              "fifos": [{"link": link_name(e, st.ops), "width": e.width, "depth": depths[e.tensor]}
                        for e in st.fifo_edges()]}
    layers, streams = [], {}
    for k, t in enumerate(internal):
        op = st.ops[st.edge(t).src[0]]
        streams[t] = _monitor_values(st, t, r.monitors[f"mon{k}"], n_gap if t == scores_t else k_layers)
        want = np.stack([np.asarray(c[t]).reshape(-1) for c in ctxs[:k_layers]]).astype(np.int64)
        layers.append({"layer": op.onnx_node.name, "op_type": op.onnx_node.op_type, "tensor": t,
                       "equal": bool(np.array_equal(streams[t][:k_layers], want)), "images": k_layers,
                       "finn_cycles_estimate": int(op.get_exp_cycles())})

    # 4) timing without gaps: II from the output's last beat per image, latency of image 0
    n_t = min(images, TIMING_IMAGES)
    t0 = time.perf_counter()
    r0 = design.run({"in0_V": feed_all[:n_t * in_beats]}, {"out0_V": n_t * obeats},
                    monitor_beats={f"mon{k}": n_t * st.edge(t).beats_per_image for k, t in enumerate(internal)})
    timings["sim_nogap_s"] = round(time.perf_counter() - t0, 2)
    timings["sim_nogap_cycles"] = r0.cycles
    timings["sim_cycles_per_s"] = round(r0.cycles / max(1e-9, timings["sim_nogap_s"]))
    ends = r0.out_cycles["out0_V"].reshape(n_t, -1)[:, -1].astype(np.int64)
    ii = steady_interval(ends)
    latency = int(ends[0] - int(r0.in_cycles["in0_V"][0]))
    for k, row in enumerate(layers):
        row["sim_cycles_per_image"] = steady_interval(r0.monitor_cycles[f"mon{k}"].reshape(n_t, -1)[:, -1])

    # 5) the rest of the images: no gaps, only the class scores monitored, over `processes` processes
    rest = images - n_gap
    if rest:
        t0 = time.perf_counter()
        # ranges of at most range_images, so that progress shows; each range refills the pipeline
        # (about 1.5 images of latency), under 1% of a 500-image range's time
        pieces = max(min(processes, rest), -(-rest // range_images))
        bounds = np.linspace(n_gap, images, pieces + 1).astype(int)
        mon = next((f"mon{k}" for k, t in enumerate(internal) if t == scores_t), None)
        sbeats = st.edge(scores_t).beats_per_image if mon else 0
        ranges = list(zip(bounds[:-1], bounds[1:]))
        with tqdm(total=rest, desc="RTL simulation", unit="img", disable=not progress) as bar:
            runs = run_images(design, [feed_all[a * in_beats:b * in_beats] for a, b in ranges],
                              [(b - a) * obeats for a, b in ranges], mon, [(b - a) * sbeats for a, b in ranges],
                              processes, progress=lambda i: bar.update(int(ranges[i][1] - ranges[i][0])))
        for (a, b), (words, mwords, _) in zip(ranges, runs):
            outs.append(_out_values(st, words, out_dt, b - a))
            if mon:
                streams[scores_t] = np.concatenate([streams[scores_t], _monitor_values(st, scores_t, mwords, b - a)])
        sim_cycles = sum(c for *_, c in runs)
        timings["sim_rest_s"] = round(time.perf_counter() - t0, 2)
        timings["sim_rest_cycles"] = sim_cycles
        timings["sim_rest_cycles_per_s"] = round(sim_cycles / max(1e-9, timings["sim_rest_s"]))
    out_vals = np.concatenate(outs)
    if label_out:
        labels, scores = out_vals[:, 0], streams[scores_t]
    else:  # the accelerator's output is the integer tensor; the host's float tail gives the label
        scores = out_vals
        labels = np.array([label_of(s) if label_of is not None else int(np.argmax(s)) for s in scores])
    result["_labels"], result["_scores"] = labels.tolist(), scores

    py_labels = np.array([int(np.asarray(c[model.graph.output[0].name]).reshape(-1)[0]) for c in ctxs])
    py_sc = np.stack([np.asarray(c[scores_t]).reshape(-1) for c in ctxs]).astype(np.int64)
    result["scores_equal_python"] = equal_rows(scores[:n_py], py_sc)
    result["labels_equal_python"] = (int((labels[:n_py] == py_labels).sum()) if label_out
                                     else result["scores_equal_python"])
    est = max(row["finn_cycles_estimate"] for row in layers)
    result.update({
        "layers": layers, "cycles_per_image": ii, "latency_cycles": latency, "finn_max_cycles_estimate": est,
        "fps_at_board_clock": round(board.clock_mhz * 1e6 / ii, 1), "clock_mhz": board.clock_mhz,
        "timings": timings,
    })
    result["passed"] = (result["labels_equal_python"] == n_py and result["scores_equal_python"] == n_py
                        and all(row["equal"] for row in layers))
    return result
