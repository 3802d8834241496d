"""Size the FIFOs between layers by simulation: start deep, run, record peak occupancy, shrink.

FINN sizes FIFOs with Vivado's rtlsim; this does it with the project's Verilator build:

1. deep: every FIFO holds a whole image of its stream, so nothing ever blocks for lack of room;
   a run without gaps records each FIFO's peak occupancy and the steady-state interval II. Over
   SIZING_IMAGES images: a deep design needs a few images to settle (a WRN-8-1: 672, 612, then
   576 cycles per image), and a cap must be judged on the settled interval.
2. peak: depth = peak + FIFO_MARGIN reproduces the deep run's schedule exactly. It is safe but
   large, because the deep run lets the input flood every FIFO in front of the slowest layer
   (up to a whole image in each: in a WRN-8-3 whose first layers run 1.5x faster than its
   slowest, 119,517 beats of FIFO, 109 BRAM36 in yosys).
3. paced: the deep design again, its input paced at one image per deep II (what a camera or a
   rate-limited DMA delivers), so no FIFO fills with images that the slowest layer cannot take
   yet; its peaks + FIFO_MARGIN are the depths when that design, run unpaced like the deep
   one, keeps the deep II (within II_TOLERANCE) without stalling. Under a flooding source the
   first full FIFO simply holds the source back.
4. shrink: every FIFO that does not feed a join (a layer with two input streams: the residual
   add) is capped at a small depth, smallest cap first. A cap is kept when the capped design
   runs the same images without stalling and its II is within II_TOLERANCE of the deep run's.
   The join inputs keep their depth from 2 or 3: a residual shortcut must hold what the main branch's
   sliding windows keep back, or the fork and the join wait for each other forever.
Every run is of one Verilator build: the deep design is stitched with a limit port on every
FIFO (hw/rtl/stream_fifo.sv LIMIT_PORT), under which a FIFO holds at most `limit` beats, cycle
for cycle what a FIFO of that depth does; the depths tried in 3 and 4 are limits, not new builds
(a build of the default accelerator takes about a minute, a sizing run a few seconds).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hw.sim import Stall

FIFO_MARGIN = 2  # beats above the simulated peak, so a full FIFO never changes the schedule
SHRINK_CAPS = (8, 32, 128)  # tried in this order on the FIFOs that feed no join
II_TOLERANCE = 0.01  # a capped design may be this much slower than the deep one
SIZING_IMAGES = 10  # images run for sizing (the caller's images repeated when it has fewer)


@dataclass
class FifoSizing:
    depths: dict[str, int]  # tensor -> depth of the design to use
    peaks: dict[str, int]  # tensor -> peak occupancy with deep FIFOs
    joins: list[str]  # tensors whose FIFO feeds a join and keeps its peak depth
    deep_ii: float  # settled cycles per image with deep FIFOs
    deep_cycles: int  # cycles to the last output beat with deep FIFOs
    cap: int | None  # the cap kept, None: no cap
    paced_peaks: dict[str, int] = field(default_factory=dict)  # tensor -> peak with paced input
    base: str = "peak"  # depths the caps were applied to: "peak" (flooded) or "paced"
    tried: list[dict] = field(default_factory=list)  # per try: ii or stall, kept or not, seconds

    def summary(self) -> dict:
        return {"deep_ii": self.deep_ii, "deep_cycles": self.deep_cycles, "base": self.base, "cap": self.cap,
                "tried": self.tried, "joins": self.joins,
                "peak_depth_beats": sum(peak_depths(self.peaks).values()),
                "paced_depth_beats": sum(peak_depths(self.paced_peaks).values()),
                "depth_beats": sum(self.depths.values())}


def peak_depths(peaks: dict[str, int]) -> dict[str, int]:
    """Depths that hold each FIFO's peak occupancy, + FIFO_MARGIN (at least 2)."""
    return {t: max(2, p + FIFO_MARGIN) for t, p in peaks.items()}


def steady_interval(ends: np.ndarray) -> int:
    """Cycles between consecutive images' last beats, the first image (pipeline fill) left out
    when there are enough images."""
    d = np.diff(np.asarray(ends, dtype=np.int64))
    return int((d[1:] if len(d) > 1 else d).mean())


def settled_interval(ends: np.ndarray) -> float:
    """Mean cycles between the last images' ends: the last third of the intervals."""
    d = np.diff(np.asarray(ends, dtype=np.int64))
    return float(d[-max(1, len(d) // 3):].mean())


def join_inputs(st) -> list[str]:
    """Tensors of the FIFOs that feed a layer with more than one input stream."""
    fan_in: dict[int, int] = {}
    for e in st.edges:
        if e.dst is not None:
            fan_in[e.dst[0]] = fan_in.get(e.dst[0], 0) + 1
    return [e.tensor for e in st.fifo_edges() if fan_in[e.dst[0]] > 1]


def _run_timed(design, feed: np.ndarray, out_beats: int, images: int, **kw):
    """The run, its settled II and the cycle of its last output beat."""
    r = design.run({"in0_V": feed}, {"out0_V": out_beats}, **kw)
    ends = r.out_cycles["out0_V"].reshape(images, -1)[:, -1]
    return r, settled_interval(ends), int(ends[-1])


def _try_depths(deep, design, depths: dict[str, int], feed, out_beats: int, images: int, deep_ii: float,
                deep_cycles: int) -> dict:
    """Run the deep design limited to ``depths`` (unpaced input); kept when it neither stalls
    nor runs more than II_TOLERANCE slower than the deep design."""
    t0 = time.perf_counter()
    row: dict = {}
    try:
        _, row["ii"], row["cycles"] = _run_timed(design, feed, out_beats, images, settings=deep.limits(depths))
    except Stall as e:
        row["stall"] = str(e)
    row["kept"] = ("ii" in row and row["ii"] <= deep_ii * (1 + II_TOLERANCE)
                   and row["cycles"] <= deep_cycles * (1 + II_TOLERANCE))
    row["seconds"] = round(time.perf_counter() - t0, 1)
    return row


def size_fifos(deep, feed: np.ndarray, out_beats: int, images: int, caps=SHRINK_CAPS) -> FifoSizing:
    """``deep``: the partition stitched with whole-image FIFOs and limit ports (hw.stitch.stitch
    with default_depth=None, limit_ports=True); ``feed``/``out_beats``: ``images`` images' input
    words and output beats."""
    if not deep.limit_ports:
        raise ValueError("size_fifos needs the deep design stitched with limit_ports=True")
    design = deep.design()
    design.build()
    unlimited = deep.limits({e.tensor: e.depth for e in deep.fifo_edges()})  # as stitched
    r, deep_ii, deep_cycles = _run_timed(design, feed, out_beats, images, settings=unlimited)
    probe = lambda run: {e.tensor: int(run.probes[f"fifo{k}_maxcount"]) for k, e in enumerate(deep.fifo_edges())}
    peaks = probe(r)
    # the same design fed one image per deep II: what each FIFO holds in steady state, no flood
    paced_run = design.run({"in0_V": feed}, {"out0_V": out_beats}, pace_beats={"in0_V": len(feed) // images},
                           pace_cycles=int(np.ceil(deep_ii)), settings=unlimited)
    paced = probe(paced_run)
    # peak + margin, but a FIFO that filled keeps the deep depth (the design that ran; a limit
    # cannot go deeper)
    stitched = {e.tensor: e.depth for e in deep.fifo_edges()}
    within = lambda depths: {t: min(d, stitched[t]) for t, d in depths.items()}  # noqa: E731
    at_peak = within(peak_depths(peaks))
    joins = join_inputs(deep)
    sizing = FifoSizing(at_peak, peaks, joins, deep_ii, deep_cycles, None, paced_peaks=paced)
    at_paced = within(peak_depths(paced))
    row = {"depths": "paced", **_try_depths(deep, design, at_paced, feed, out_beats, images, deep_ii, deep_cycles)}
    sizing.tried.append(row)
    if row["kept"]:
        sizing.depths, sizing.base = at_paced, "paced"
    base = sizing.depths
    for cap in caps:
        depths = {t: d if t in joins else min(d, max(2, cap)) for t, d in base.items()}
        if depths == base:
            break  # the cap changes nothing any more
        row = {"cap": cap, **_try_depths(deep, design, depths, feed, out_beats, images, deep_ii, deep_cycles)}
        sizing.tried.append(row)
        if row["kept"]:
            sizing.depths, sizing.cap = depths, cap
            break
    return sizing


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
