"""`wrn1bit verify --netlist` (`make verify NETLIST=1`): every layer of the build as RTL and as the
netlist yosys makes of it, on the same vectors (hw.layer_netlist), against FINN's python execution.

The build is the one `wrn1bit verify` simulates (flows.build, folded with ``margin``); the inputs are
the same real images (flows.verify.prepare_verification), each layer fed the tensors FINN's python
execution of the whole graph gives it. The netlists are the yosys estimate's (``<build>/synth/<layer>/
netlist.v``, from its cache where the build synthesized the layer). Report:
``<build>/verify_netlist.{json,md}``: per layer RTL == netlist == software, same output cycles, and
the time each step took.

``--whole`` (``whole_accelerator``): the whole stitched accelerator, its FIFOs at the depths `wrn1bit
verify` sized (verify_rtl.json), synthesized by yosys as one flattened design and its netlist simulated
beside the RTL on the same packed input words (hw.accelerator_netlist): output words, labels and
class-score integers equal to the RTL's and to the QONNX model's, the same cycles per image. Its
results are the report's "whole" section (with ``--layers`` the per-layer table too).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from common.atomic import write_json, write_text
from common.boards import DEFAULT_MARGIN, check_margin, load_board
from common.errors import UserError
from flows.build import build, build_dir_for, codegen_model
from flows.exactness import stage_input
from flows.finn_env import finn_log_to
from flows.verify import prepare_verification
from hw.accelerator_sim import equal_rows


def verify_netlist_layers(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None, images=3,
                          gap_prob: float = 0.1, stall_prob: float = 0.1, seed: int = 0, data=None, inputs=None,
                          margin: float = DEFAULT_MARGIN, layers: list[str] | None = None,
                          whole: bool = False) -> dict:
    """Per layer (the layers ``layers``, default all), or with ``whole`` the whole accelerator (and the
    per-layer check of ``layers`` where given)."""
    from hw.layer_netlist import netlist_markdown, verify_layers_netlist

    if images == "all" or int(images) < 1:
        raise UserError(f"--netlist runs every layer image by image: give --images 1..N, got {images}")
    if whole and int(images) < 3:
        raise UserError(f"--netlist --whole measures cycles per image after the pipeline fills: give --images 3 "
                        f"or more, got {images}")
    check_margin(margin)
    board = load_board(board_name)
    v = prepare_verification(model_path, images, checkpoint, data, inputs)
    build(v.model_path, board_name, out, margin=margin, vendor_free=True)
    bdir = build_dir_for(v.model_path, board, Path(out))

    def progress(k, n, row):
        state = row.get("skipped") or ("ok" if row["passed"] else "FAILED")
        print(f"[netlist] {k}/{n} {row['layer']}: {state}", file=sys.stderr, flush=True)

    with finn_log_to(bdir / "finn.log"):
        model = codegen_model(bdir)
        names = [n.name for n in model.graph.node]
        unknown = [n for n in (layers or []) if n not in names]
        if unknown:
            raise UserError(f"no layer named {', '.join(unknown)} in the build (layers: {', '.join(names)})")
        r = {}
        if whole:
            r["whole"] = whole_accelerator(model, v, board, bdir, gap_prob=gap_prob, stall_prob=stall_prob,
                                           seed=seed)
        if not whole or layers:
            r.update(verify_layers_netlist(model, stage_input(model, v.p, 1.0)[:LAYER_IMAGES if whole else None],
                                           bdir / "synth", gap_prob=gap_prob, stall_prob=stall_prob, seed=seed,
                                           progress=progress, only=layers))
        r["passed"] = r.get("passed", True) and r.get("whole", {}).get("passed", True)
    r.update(model=str(model_path), board=board.name, inputs=v.summary().get("inputs"))
    write_json(bdir / "verify_netlist.json", r)
    md = [f"# Netlist verification: {Path(model_path).name} on {board.name}", ""]
    if whole:
        md += [*whole_markdown(r["whole"], r["inputs"]), ""]
    if "layers" in r:
        md += [*netlist_markdown(r), ""]
    write_text(bdir / "verify_netlist.md", "\n".join(md))
    r["report"] = str(bdir / "verify_netlist.md")
    return r


LAYER_IMAGES = 3  # --whole --layers: images of the per-layer check (each layer image by image)


def sized_depths(bdir: Path, model) -> tuple[dict[str, int], dict]:
    """FIFO depths by tensor of the code-generated graph ``model``, as `wrn1bit verify` sized them for
    this build (verify_rtl.json, matched by the layers each FIFO joins), and that run's summary."""
    from qonnx.custom_op.registry import getCustomOp

    from hw.stitch import link_name, stream_edges
    from hw.synth.accelerator import sized_fifo_depths

    verify_json = bdir / "verify_rtl.json"
    by_link, _ = sized_fifo_depths(verify_json, model)
    if by_link is None:
        why = "missing" if not verify_json.is_file() else "sized another design or predates per-link depths"
        raise UserError(f"--netlist --whole runs the accelerator at the FIFO depths `wrn1bit verify` sized for this "
                        f"build, and {verify_json} is {why}: run `wrn1bit verify` with the same model, board and "
                        "margin first")
    ops = [getCustomOp(n) for n in model.graph.node]
    depths = {e.tensor: by_link[link_name(e, ops)] for e in stream_edges(model, ops) if e.has_fifo}
    rtl = json.loads(verify_json.read_text())
    return depths, {"cycles_per_image": rtl.get("cycles_per_image"), "images": rtl.get("images"),
                    "passed": rtl.get("passed")}


def whole_accelerator(model, v, board, bdir: Path, gap_prob: float = 0.1, stall_prob: float = 0.1,
                      seed: int = 0) -> dict:
    """The whole accelerator of the build ``bdir`` as RTL and as its flattened netlist on the
    verification's images ``v`` (flows.verify.Verification), compared with each other and with the
    QONNX model (hw.accelerator_netlist.compare_accelerator_netlist)."""
    from flows.verify_rtl import host_labels
    from hw.accelerator_netlist import compare_accelerator_netlist
    from hw.synth.cells import family_for_part

    depths, rtl_verify = sized_depths(bdir, model)
    t0 = time.perf_counter()
    w = compare_accelerator_netlist(
        model, stage_input(model, v.p, 1.0), depths, bdir / "netlist_whole", fpgapart=board.part,
        clk_ns=board.clock_ns, family=family_for_part(board.part), gap_prob=gap_prob, stall_prob=stall_prob,
        seed=seed, label_of=host_labels(bdir), log=lambda m: print(f"[netlist --whole] {m}", file=sys.stderr,
                                                                     flush=True))
    w["seconds"] = round(time.perf_counter() - t0, 1)
    w["verify_rtl"] = rtl_verify
    ref = v.reference.images
    ref_labels, ref_scores = np.array([r.label for r in ref]), np.stack([r.integers for r in ref])
    n = w["images"]
    for name in ("rtl", "netlist"):
        labels, scores = w.pop(f"_{name}")
        w[f"{name}_labels_equal_qonnx"] = int((np.asarray(labels) == ref_labels).sum())
        w[f"{name}_scores_equal_qonnx"] = equal_rows(np.asarray(scores), ref_scores)
    w["passed"] = bool(w["passed"] and all(w[k] == n for k in (
        "labels_equal_rtl", "scores_equal_rtl", "rtl_labels_equal_qonnx", "rtl_scores_equal_qonnx",
        "netlist_labels_equal_qonnx", "netlist_scores_equal_qonnx")))
    return w


def whole_markdown(w: dict, inputs: str | None = None) -> list[str]:
    """The "whole accelerator" section of the report."""
    n, y, sim = w["images"], w["yosys"], w["sim"]

    def same(d: dict) -> str:
        return "yes" if all(d.values()) else "**no** (" + ", ".join(k for k, v in d.items() if not v) + ")"

    rtl_ii, net_ii = sim["rtl"]["cycles_per_image"], sim["netlist"]["cycles_per_image"]
    lines = [f"## The whole accelerator as one flattened netlist: **{'PASSED' if w['passed'] else 'FAILED'}**", "",
             f"The stitched top ({w['layers']} layers, {w['fifos']} FIFOs of {w['fifo_beats']:,} beats at the depths "
             "`wrn1bit verify` sized) synthesized by yosys `synth_xilinx -flatten` as one design, its netlist "
             "simulated in Verilator with the Xilinx primitive models beside the RTL on the same packed input "
             f"words: {n} images without gaps" + (f", the first {w['gap_images']} also with {100 * w['gap_prob']:.0f}% "
                                                   f"input gaps and {100 * w['stall_prob']:.0f}% back-pressure"
                                                   if w.get("gap_images") else "") + "."
             + (f" Inputs: {inputs}." if inputs else ""), "",
             "| check | equal |", "|---|---|",
             f"| labels, netlist vs RTL | {w['labels_equal_rtl']}/{n} |",
             f"| class-score integers, netlist vs RTL | {w['scores_equal_rtl']}/{n} |",
             f"| labels vs the QONNX model: RTL / netlist | {w['rtl_labels_equal_qonnx']}/{n} / "
             f"{w['netlist_labels_equal_qonnx']}/{n} |",
             f"| class-score integers vs the QONNX model: RTL / netlist | {w['rtl_scores_equal_qonnx']}/{n} / "
             f"{w['netlist_scores_equal_qonnx']}/{n} |",
             f"| every output word and its cycle, no gaps | {same(w['no_gaps'])} |"]
    if "with_gaps" in w:
        lines.append(f"| every output word and its cycle, gaps and back-pressure | {same(w['with_gaps'])} |")
    vr = w.get("verify_rtl") or {}
    lines += [f"| cycles per image, RTL / netlist | {rtl_ii:,} / {net_ii:,} "
              f"({'equal' if rtl_ii == net_ii else '**differ**'}"
              + (f"; `wrn1bit verify`: {vr['cycles_per_image']:,}" if vr.get("cycles_per_image") else "") + ") |",
              f"| latency (cycles), RTL / netlist | {sim['rtl']['latency_cycles']:,} / "
              f"{sim['netlist']['latency_cycles']:,} |", "",
              "| step | time | peak memory |", "|---|---:|---:|",
              f"| yosys synth_xilinx of the whole top ({y['LUT']:,} LUT, {y['FF']:,} FF, {y['BRAM36']:g} BRAM36; "
              f"netlist {y['netlist_mb']:g} MB) | {y['seconds']:,.0f} s{' (cached)' if y['cached'] else ''} | "
              + (f"{y['peak_mb']:,} MB |" if y.get("peak_mb") else "- |"),
              f"| Verilator + g++ build of the netlist | {w['netlist_build_s']:,.0f} s"
              f"{' (cached)' if w.get('netlist_build_cached') else ''} | "
              + (f"{w['netlist_build_peak_mb']:,} MB |" if w.get("netlist_build_peak_mb") else "- |"),
              f"| Verilator + g++ build of the RTL | {w['rtl_build_s']:,.0f} s | "
              + (f"{w['rtl_build_peak_mb']:,} MB |" if w.get("rtl_build_peak_mb") else "- |")]
    for name in ("rtl", "netlist"):
        s = sim[name]
        lines.append(f"| {'RTL' if name == 'rtl' else 'netlist'} simulation, {n} images without gaps "
                     f"({s['cycles']:,} cycles, {s['cycles_per_s']:,} cycles/s) | {s['seconds']:,.1f} s | "
                     f"{s['peak_mb']:,} MB |")
    lines += ["", "Peak memory: of the yosys / Verilator and g++ processes (builds), of the simulating Python "
              "process (simulations; it also holds FINN and the graph)."]
    if w["sim"]["rtl"]["cycles_per_s"]:
        lines.append(f"The netlist simulates {sim['rtl']['cycles_per_s'] / max(1, sim['netlist']['cycles_per_s']):,.0f}x "
                     "slower than the RTL.")
    return lines
