"""`make verify` (`wrn1bit verify`, `python -m hw verify`): the whole accelerator of a QONNX model
in Verilator, against FINN's python execution of the same graph and against the QONNX model as
given (flows.reference; and Brevitas where this project's checkpoint sits beside it).

Steps (``verify_accelerator``):
  1. the vendor-free FINN build (flows.build) gives the folded graph with this project's RTL in
     place of FINN's HLS layers, every layer's generated HDL (the step_wrn_codegen stage), and tail.onnx where
     float nodes follow the accelerator's output (flows.float_tail: the host runs them);
  2. inputs and references (flows.verify.prepare_verification): the model's own input quantizer
     gives the integers the accelerator takes;
  3. the simulation (hw.accelerator_sim.simulate_accelerator): FIFO sizing, the first images with
     gaps and back-pressure and every stream monitored, timing, the rest (``make verify
     VERIFY_IMAGES=all``: the whole test set) in ``processes`` simulator processes;
  4. labels and output integers of every image against the QONNX reference (and Brevitas); top-1
     accuracy of the simulated hardware next to the software's where the inputs have labels.
     Report: <build>/verify_rtl.{json,md}.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from common.atomic import write_json, write_text
from common.boards import DEFAULT_MARGIN, check_margin, load_board
from common.errors import UserError
from flows.build import build, build_dir_for, codegen_model
from flows.exactness import stage_input
from flows.finn_env import finn_log_to
from flows.float_tail import tail_label
from flows.verify import prepare_verification
from hw.accelerator_sim import equal_rows, simulate_accelerator
from hw.fifo_sizing import fifo_sizing_markdown


def load_tail(bdir: Path):
    """The build's float tail (tail.onnx), or None."""
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(bdir) / "tail.onnx"
    return ModelWrapper(str(path)) if path.is_file() else None


def host_labels(bdir: Path):
    """label_of(scores) for the simulation: the build's float tail where there is one, else None
    (the arg max of the accelerator's integers)."""
    tail = load_tail(bdir)
    return None if tail is None else (lambda scores: tail_label(tail, scores))


def verify_accelerator(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None, images=100,
                       gap_prob: float = 0.1, stall_prob: float = 0.1, seed: int = 0, data=None, inputs=None,
                       processes: int = 1, margin: float = DEFAULT_MARGIN) -> dict:
    """`make verify`'s whole-accelerator half: build (folded with ``margin``), simulate, compare, report."""

    if images != "all" and int(images) < 3:
        raise UserError(f"--images must be at least 3 (the pipeline fills on the first), got {images}")
    if processes < 1:
        raise UserError(f"--processes must be at least 1, got {processes}")
    check_margin(margin)
    board = load_board(board_name)
    v = prepare_verification(model_path, images, checkpoint, data, inputs)
    build(v.model_path, board_name, out, margin=margin, vendor_free=True)
    bdir = build_dir_for(v.model_path, board, Path(out))
    with finn_log_to(bdir / "finn.log"):
        model = codegen_model(bdir)
        result = simulate_accelerator(model, stage_input(model, v.p, 1.0), board, bdir / "rtl_sim", gap_prob,
                                      stall_prob, seed, label_of=host_labels(bdir), processes=processes)
    result.update(v.summary())
    compare_references(result, v)
    write_reports(bdir, result)
    return result


def compare_references(result: dict, v) -> None:
    """Add the comparisons with the QONNX reference (and Brevitas, and the data set's labels)
    to a simulation result; pops the simulated ``_labels`` / ``_scores``."""
    labels, scores = np.asarray(result.pop("_labels")), np.asarray(result.pop("_scores"))
    ref = v.reference.images
    result["labels_equal_qonnx"] = int((labels == np.array([r.label for r in ref])).sum())
    result["scores_equal_qonnx"] = equal_rows(scores, np.stack([r.integers for r in ref]))
    checks = ["labels_equal_qonnx", "scores_equal_qonnx"]
    if v.brevitas is not None:
        result["labels_equal_brevitas"] = int((labels == np.array([r[0] for r in v.brevitas])).sum())
        result["scores_equal_brevitas"] = equal_rows(scores, np.stack([r[1] for r in v.brevitas]))
        checks += ["labels_equal_brevitas", "scores_equal_brevitas"]
    if v.labels is not None:
        y = np.asarray(v.labels)
        result["accuracy"] = {"hardware": round(float((labels == y).mean()), 6),
                              "qonnx": round(float((np.array([r.label for r in ref]) == y).mean()), 6)}
    n = result["images"]
    result["passed"] = result["passed"] and all(result[k] == n for k in checks)


def write_reports(bdir: Path, result: dict) -> None:
    write_json(bdir / "verify_rtl.json", result)
    write_text(bdir / "verify_rtl.md", render_markdown(result))


def checks_table(r: dict) -> list[str]:
    """The Markdown rows of a whole-accelerator result's label and output-integer comparisons."""
    n, n_py = r["images"], r.get("python_images", r["images"])
    rows = ["| check | equal |", "|---|---|",
            f"| labels vs the QONNX model (qonnx) | {r['labels_equal_qonnx']}/{n} |",
            f"| output integers vs the QONNX model | {r['scores_equal_qonnx']}/{n} |",
            f"| labels vs FINN python execution of the hardware graph | {r['labels_equal_python']}/{n_py} |",
            f"| output integers vs FINN python execution | {r['scores_equal_python']}/{n_py} |"]
    if "labels_equal_brevitas" in r:
        rows += [f"| labels vs Brevitas | {r['labels_equal_brevitas']}/{n} |",
                 f"| output integers vs Brevitas | {r['scores_equal_brevitas']}/{n} |"]
    if "accuracy" in r:
        a = r["accuracy"]
        rows += [f"| top-1 accuracy: simulated hardware / QONNX model | {100 * a['hardware']:.2f}% / "
                 f"{100 * a['qonnx']:.2f}% |"]
    return rows


def inputs_line(r: dict) -> str:
    return (f"Inputs: {r['inputs']}. Reference: {r['reference']}."
            + (f" Brevitas checkpoint `{Path(r['checkpoint']).name}`." if r.get("checkpoint") else ""))


def render_markdown(r: dict) -> str:
    n = r["images"]
    lines = [
        f"# RTL simulation of the whole accelerator ({Path(r['model']).name}, {r['board']})", "",
        f"**{'PASSED' if r['passed'] else 'FAILED'}** on {n} images, Verilator, input gaps {r['gap_prob']:.0%} / "
        f"output back-pressure {r['stall_prob']:.0%} on the first {r.get('gap_images', n)}"
        + (f", the rest without, in {r['processes']} simulator processes" if r.get("gap_images", n) < n else "")
        + ".", "", inputs_line(r), "",
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
