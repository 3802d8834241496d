"""The whole stitched accelerator as one flattened yosys netlist, simulated beside its RTL.

``compare_accelerator_netlist`` stitches the code-generated partition with its sized FIFO depths
(hw.stitch, as hw.accelerator_sim's verification run does, without the simulation-only peak-count
outputs), synthesizes that top with yosys ``synth_xilinx -flatten`` (hw.synth.runner, cached in its
work folder; every layer's RTL and memory files staged as the per-layer estimate stages them), builds
the netlist with the Xilinx primitive models (hw.sim.netlist) into the same AXI-stream testbench, and
runs the RTL and the netlist on the same packed input words:

- the first ``gap_images`` images with random input gaps and output back-pressure (same seed for both);
- every image without gaps: cycles per image (the output's last beat per image) and every output beat's
  cycle.

Where the graph ends in LabelSelect, the class scores (its input) are a monitored stream of the top, so
that the netlist's scores are compared too. Returned: labels, scores, output words and cycles of both,
the comparison, and what each step cost (yosys, the netlist's Verilator build, simulation speed, peak
memory of the processes involved).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np

from hw.sim.verilator import Stream

WHOLE_TOP = "accelerator"


class PeakMemory:
    """Peak resident memory while a block runs, sampled every ``period`` s: of this process and of its
    child processes together (yosys, Verilator, g++). A context manager; read ``self_mb`` /
    ``children_mb`` after it."""

    def __init__(self, period: float = 0.5):
        self.period = period
        self.self_mb = 0.0
        self.children_mb = 0.0
        self._stop = threading.Event()

    def _sample(self):
        import psutil

        me = psutil.Process()
        while True:
            try:
                self.self_mb = max(self.self_mb, me.memory_info().rss / 2**20)
                total = 0
                for c in me.children(recursive=True):
                    try:
                        total += c.memory_info().rss
                    except psutil.Error:
                        pass
                self.children_mb = max(self.children_mb, total / 2**20)
            except psutil.Error:
                pass
            if self._stop.wait(self.period):
                return

    def __enter__(self):
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


def whole_sources(st) -> list[Path]:
    """Every file the stitched top needs in yosys: the FIFO, each layer's RTL and memory files (as the
    per-layer estimate stages them: hw.synth.accelerator.layer_sources), the top."""
    from hw.stitch import FIFO_FILE
    from hw.synth.accelerator import layer_sources

    files = [FIFO_FILE]
    for op in st.ops:
        for f in layer_sources(op)[1]:
            if f not in files:
                files.append(f)
    top = next(f for f in st.files if f.stem == st.top)
    return [*files, top]


def _scores_tensor(model) -> tuple[bool, str]:
    last = model.graph.node[-1]
    label_out = last.op_type.startswith("LabelSelect")
    return label_out, (last.input[0] if label_out else model.graph.output[0].name)


def _labels_scores(model, st, r, images: int, label_of):
    """(labels, class-score integers) of one run of the stitched top."""
    from hw.accelerator_sim import _monitor_values, _out_values

    label_out, scores_t = _scores_tensor(model)
    out_dt = model.get_tensor_datatype(model.graph.output[0].name)
    out = _out_values(st, r.outputs["out0_V"], out_dt, images)
    if label_out:
        return out[:, 0], _monitor_values(st, scores_t, r.monitors["mon0"], images)
    labels = np.array([label_of(s) if label_of is not None else int(np.argmax(s)) for s in out])
    return labels, out


def _same_run(a, b) -> dict:
    """RTL run ``a`` vs netlist run ``b``: equal words and equal cycles, per stream."""
    out = {}
    for s in a.outputs:
        out[f"{s}_words_equal"] = bool(np.array_equal(a.outputs[s], b.outputs[s]))
        out[f"{s}_cycles_equal"] = bool(np.array_equal(a.out_cycles[s], b.out_cycles[s]))
    for m in a.monitors:
        out[f"{m}_words_equal"] = bool(np.array_equal(a.monitors[m], b.monitors[m]))
        out[f"{m}_cycles_equal"] = bool(np.array_equal(a.monitor_cycles[m], b.monitor_cycles[m]))
    out["cycles_equal"] = a.cycles == b.cycles
    return out


def compare_accelerator_netlist(model, xin: np.ndarray, depths: dict[str, int], work_dir: str | Path, *,
                                fpgapart: str = "xc7z020clg400-1", clk_ns: float = 10.0, family: str = "xc7",
                                gap_images: int = 2, gap_prob: float = 0.1, stall_prob: float = 0.1,
                                seed: int = 0, label_of=None, timeout: float | None = None,
                                log=None) -> dict:
    """The stitched partition ``model`` (FIFO depths ``depths``, tensor -> beats) as RTL and as its
    flattened yosys netlist on the accelerator's input integers ``xin`` (NHWC); see the module
    docstring. ``work_dir``: the stitched top (``top/``), the yosys run (``synth/``, cached), the
    Verilator libraries (``sim/``). ``log(message)`` is told each step as it starts.
    The result keeps both runs' labels and scores under ``_rtl`` / ``_netlist`` ((labels, scores))."""
    from hw.accelerator_sim import steady_interval
    from hw.sim.axis import pack_words
    from hw.sim.netlist import netlist_design
    from hw.stitch import stitch
    from hw.synth.runner import synthesize

    say = log or (lambda m: None)
    work_dir = Path(work_dir)
    images = len(xin)
    label_out, scores_t = _scores_tensor(model)
    st = stitch(model, work_dir / "top", name=WHOLE_TOP, depths=depths, fpgapart=fpgapart, clk_ns=clk_ns,
                monitors=[scores_t] if label_out else [], peak_ports=False)
    in_edge = next(e for e in st.edges if e.src is None)
    out_edge = next(e for e in st.edges if e.dst is None)
    elems_in = st.ops[in_edge.dst[0]].get_folded_input_shape(0)[-1]
    in_dt = model.get_tensor_datatype(model.graph.input[0].name)
    in_beats = xin[:1].size // elems_in
    feed = pack_words(xin.reshape(-1, elems_in).astype(np.int64), in_dt.bitwidth(), st.inputs[0].width)
    obeats = out_edge.beats_per_image
    sbeats = st.edge(scores_t).beats_per_image if label_out else 0
    monitors = [Stream("mon0", st.edge(scores_t).width)] if label_out else []
    cache = work_dir / "sim"

    result: dict = {"images": images, "top": WHOLE_TOP, "layers": len(st.ops), "fifos": len(st.fifo_edges()),
                    "fifo_beats": sum(e.depth for e in st.fifo_edges()), "gap_images": min(gap_images, images),
                    "gap_prob": gap_prob, "stall_prob": stall_prob, "seed": seed}

    say("RTL: Verilator build of the stitched top")
    rtl = st.design(cache_dir=cache)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        rtl.build()
    result["rtl_build_s"] = round(time.perf_counter() - t0, 1)
    result["rtl_build_peak_mb"] = round(mem.children_mb)

    say(f"yosys synth_xilinx -flatten of the whole stitched top ({len(st.ops)} layers, {result['fifos']} FIFOs)")
    with PeakMemory() as mem:
        synth = synthesize(WHOLE_TOP, whole_sources(st), family=family, workdir=work_dir / "synth", timeout=timeout)
    result["yosys"] = {"seconds": synth.seconds, "cached": synth.cached, "peak_mb": None if synth.cached
                       else round(mem.children_mb), "LUT": synth.LUT, "FF": synth.FF, "BRAM36": synth.BRAM36,
                       "DSP": synth.DSP, "CARRY": synth.CARRY, "LUTRAM": synth.LUTRAM,
                       "netlist_mb": round(synth.netlist.stat().st_size / 2**20, 1)}

    say("netlist: Verilator build with the Xilinx primitive models")
    net = netlist_design(WHOLE_TOP, synth.netlist, st.inputs, st.outputs, cache_dir=cache, monitors=monitors)
    with PeakMemory() as mem:
        t0 = time.perf_counter()
        net.build()
    built = net.build_seconds is not None
    result["netlist_build_s"] = round(net.build_seconds if built else time.perf_counter() - t0, 1)
    result["netlist_build_cached"] = not built
    result["netlist_build_peak_mb"] = round(mem.children_mb) if built else None

    runs = {}
    n_gap = min(gap_images, images)
    if n_gap:
        kw = dict(gap_prob=gap_prob, stall_prob=stall_prob, seed=seed)
        for name, design in (("rtl", rtl), ("netlist", net)):
            say(f"{name}: {n_gap} images with gaps and back-pressure")
            runs[name, "gaps"] = design.run({"in0_V": feed[:n_gap * in_beats]}, {"out0_V": n_gap * obeats},
                                            monitor_beats={"mon0": n_gap * sbeats} if label_out else None, **kw)
        result["with_gaps"] = _same_run(runs["rtl", "gaps"], runs["netlist", "gaps"])
    sim = {}
    for name, design in (("rtl", rtl), ("netlist", net)):
        say(f"{name}: {images} images without gaps")
        with PeakMemory() as mem:
            t0 = time.perf_counter()
            r = design.run({"in0_V": feed}, {"out0_V": images * obeats},
                           monitor_beats={"mon0": images * sbeats} if label_out else None)
            seconds = time.perf_counter() - t0
        runs[name, "nogap"] = r
        ends = r.out_cycles["out0_V"].reshape(images, -1)[:, -1].astype(np.int64)
        sim[name] = {"cycles": int(r.cycles), "seconds": round(seconds, 2),
                     "cycles_per_s": round(r.cycles / max(seconds, 1e-9)),
                     "cycles_per_image": steady_interval(ends) if images > 1 else int(ends[0]),
                     "latency_cycles": int(ends[0] - int(r.in_cycles["in0_V"][0])),
                     "image_end_cycles": ends.tolist(), "peak_mb": round(mem.self_mb)}
    result["sim"] = sim
    result["no_gaps"] = _same_run(runs["rtl", "nogap"], runs["netlist", "nogap"])
    result["_rtl"] = _labels_scores(model, st, runs["rtl", "nogap"], images, label_of)
    result["_netlist"] = _labels_scores(model, st, runs["netlist", "nogap"], images, label_of)
    (rl, rs), (nl, ns) = result["_rtl"], result["_netlist"]
    result["labels_equal_rtl"] = int((rl == nl).sum())
    result["scores_equal_rtl"] = int((rs == ns).all(axis=1).sum())
    result["cycles_per_image_equal"] = sim["rtl"]["cycles_per_image"] == sim["netlist"]["cycles_per_image"]
    same = [v for run in ("with_gaps", "no_gaps") if run in result for v in result[run].values()]
    result["passed"] = bool(all(same) and result["cycles_per_image_equal"])
    return result
