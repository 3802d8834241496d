"""Every layer of a code-generated dataflow partition as RTL and as its yosys netlist, on the same
vectors: ``wrn1bit verify --netlist`` (flows.verify_netlist) per layer.

Each layer's inputs are the tensors FINN's python execution of the whole graph gives it on real
images (hw.accelerator_sim.python_reference), one image per run, each from reset, with the same
input gaps, back-pressure and seed for both. Per layer: RTL == FINN python, netlist == FINN python,
RTL == netlist element by element, the netlist's output beats on the RTL's cycles, and the time
each took (yosys, the netlist's Verilator build, both simulations). The netlist is the one the
yosys estimate writes (hw.synth.runner: ``<synth_root>/<layer>/netlist.v``), taken from its cache
where the build already synthesized the layer.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np


def _ints(a) -> np.ndarray:
    return np.rint(np.asarray(a, dtype=np.float64)).astype(np.int64)


def verify_layers_netlist(model, x_nhwc: np.ndarray, synth_root: str | Path, *, gap_prob: float = 0.1,
                          stall_prob: float = 0.1, seed: int = 0, timeout: float | None = None,
                          progress=None, only: list[str] | None = None) -> dict:
    """Per-layer RTL vs netlist vs FINN python of the code-generated graph ``model`` on the images
    ``x_nhwc`` (the accelerator's input integers, NHWC). ``only``: these layers' names only.
    Returns {"layers": [...], "passed": bool, "images": n, "seconds": ...}."""
    from finn.custom_op.fpgadataflow.rtlbackend import RTLBackend
    from qonnx.custom_op.registry import getCustomOp

    from hw.accelerator_sim import python_reference
    from hw.sim.netlist import first_difference, node_netlist
    from hw.sim.node import node_design, simulate_node, stream_inputs

    t_all = time.perf_counter()
    contexts = python_reference(model, x_nhwc)
    rows = []
    nodes = [n for n in model.graph.node if only is None or n.name in only]
    for k, node in enumerate(nodes):
        op = getCustomOp(node)
        row = {"layer": node.name, "op_type": node.op_type}
        rows.append(row)
        if not isinstance(op, RTLBackend):
            row["skipped"] = f"{node.op_type} has no RTL here"
            continue
        rtl_design = node_design(op)
        t0 = time.perf_counter()
        rtl_design.build()
        row["rtl_build_s"] = round(time.perf_counter() - t0, 2)
        t0 = time.perf_counter()
        net_design, synth = node_netlist(op, Path(synth_root) / node.name, timeout=timeout)
        row["synth_s"] = 0.0 if synth.cached else synth.seconds
        row["synth_cached"] = synth.cached
        net_design.build()
        row["netlist_build_s"] = round(net_design.build_seconds or 0.0, 2)
        row["cells"] = {c: n for c, n in synth.cells.items() if c.startswith(("RAMB", "DSP"))}
        row.update(LUT=synth.LUT, FF=synth.FF, BRAM36=synth.BRAM36)
        rtl_s = net_s = 0.0
        cycles = [0, 0]
        diffs = {"rtl_vs_python": None, "netlist_vs_python": None, "rtl_vs_netlist": None}
        same_cycles = True
        streams = [s.name for s in net_design.outputs]
        for i, ctx in enumerate(contexts):
            ins = [ctx[node.input[j]] for j in stream_inputs(op)]
            want = [_ints(ctx[o]) for o in node.output]
            run = dict(gap_prob=gap_prob, stall_prob=stall_prob, seed=seed + i)
            t0 = time.perf_counter()
            rtl, rtl_res = simulate_node(op, ins, design=rtl_design, **run)
            rtl_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            net, net_res = simulate_node(op, ins, design=net_design, **run)
            net_s += time.perf_counter() - t0
            rtl, net = [_ints(y) for y in rtl], [_ints(y) for y in net]
            cycles[0] += rtl_res.cycles
            cycles[1] += net_res.cycles
            for key, (a, b, an, bn) in {"rtl_vs_python": (want, rtl, "FINN python", "RTL"),
                                        "netlist_vs_python": (want, net, "FINN python", "netlist"),
                                        "rtl_vs_netlist": (rtl, net, "RTL", "netlist")}.items():
                d = first_difference(a, b, an, bn, streams)
                if d and diffs[key] is None:
                    diffs[key] = f"image {i}: {d}"
            same_cycles &= all(np.array_equal(rtl_res.out_cycles[s], net_res.out_cycles[s]) for s in streams)
        row.update(diffs)
        row.update(rtl_sim_s=round(rtl_s, 3), netlist_sim_s=round(net_s, 3), rtl_cycles=cycles[0],
                   netlist_cycles=cycles[1], same_cycles=bool(same_cycles),
                   rtl_cycles_per_s=round(cycles[0] / rtl_s) if rtl_s else None,
                   netlist_cycles_per_s=round(cycles[1] / net_s) if net_s else None)
        row["passed"] = all(v is None for v in diffs.values()) and same_cycles
        if progress:
            progress(k + 1, len(nodes), row)
    checked = [r for r in rows if "skipped" not in r]
    return {"layers": rows, "images": len(contexts), "gap_prob": gap_prob, "stall_prob": stall_prob,
            "passed": bool(checked) and all(r["passed"] for r in checked),
            "seconds": round(time.perf_counter() - t_all, 1)}


def netlist_markdown(r: dict) -> list[str]:
    """The per-layer table of a verify_layers_netlist result."""
    def eq(row, key):
        return "==" if row.get(key) is None else "**!=**"

    lines = [f"Every layer as RTL and as its yosys netlist (Xilinx primitive models), {r['images']} images, "
             f"{100 * r['gap_prob']:.0f}% input gaps, {100 * r['stall_prob']:.0f}% back-pressure: "
             f"**{'PASSED' if r['passed'] else 'FAILED'}** ({r['seconds']:.0f} s)", "",
             "| layer | type | RTL vs python | netlist vs python | RTL vs netlist | same cycles | LUT | FF | BRAM36 "
             "| yosys s | netlist build s | RTL sim s | netlist sim s | netlist / RTL speed |",
             "|---|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for row in r["layers"]:
        if "skipped" in row:
            lines.append(f"| {row['layer']} | {row['op_type']} | {row['skipped']} |" + " |" * 11)
            continue
        speed = (f"{row['netlist_cycles_per_s'] / row['rtl_cycles_per_s']:.2f}"
                 if row.get("netlist_cycles_per_s") and row.get("rtl_cycles_per_s") else "-")
        lines.append(
            f"| {row['layer']} | {row['op_type']} | {eq(row, 'rtl_vs_python')} | {eq(row, 'netlist_vs_python')} | "
            f"{eq(row, 'rtl_vs_netlist')} | {'yes' if row['same_cycles'] else '**no**'} | {row['LUT']:,} | "
            f"{row['FF']:,} | {row['BRAM36']:g} | {row['synth_s']:.1f}{' (cached)' if row['synth_cached'] else ''} | "
            f"{row['netlist_build_s']:.1f} | {row['rtl_sim_s']:.2f} | {row['netlist_sim_s']:.2f} | {speed} |")
    bad = [(row["layer"], row[k]) for row in r["layers"] for k in ("rtl_vs_python", "netlist_vs_python",
                                                                   "rtl_vs_netlist") if row.get(k)]
    if bad:
        lines += ["", "First differences:", ""] + [f"- {layer}: {d}" for layer, d in bad]
    return lines
