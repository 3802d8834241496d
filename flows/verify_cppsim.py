"""`make verify HW=cppsim` (`wrn1bit verify --sim cppsim`): the whole HLS accelerator of a QONNX
model layer by layer (hw.cppsim.layerwise: FINN's HLS layers in cppsim, the RTL-only layers in
Verilator) on real inputs, against FINN's python execution of the same graph, the QONNX model
and Brevitas.

Steps (``verify_hls_accelerator``):
  1. the vendor-free FINN build with ``--hw-backend hls`` (flows.build): the folded graph keeps
     FINN's HLS layers; built under <out>/hls/ so it does not replace the RTL build;
  2. inputs and references (flows.verify.prepare_verification);
  3. compile and run (hw.cppsim.layerwise), compare with the references;
  4. the report goes to <build>/verify_cppsim.{json,md}, with the time per image.
"""

from __future__ import annotations

import time
from pathlib import Path

from common.atomic import write_json, write_text
from common.boards import load_board
from common.errors import UserError
from flows.build import build, build_dir_for, codegen_model
from flows.exactness import stage_input
from flows.finn_env import finn_log_to
from flows.verify import prepare_verification
from flows.verify_rtl import checks_table, compare_references, host_labels, inputs_line
from hw.cppsim import require_cppsim
from hw.cppsim.layerwise import LayerwiseSim, run_and_compare


def verify_hls_accelerator(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None,
                           images=10, seed: int = 0, progress: bool = True, data=None, inputs=None) -> dict:
    """`make verify HW=cppsim`'s whole-accelerator half: build (HLS backend), compile, run, compare, report."""

    if images != "all" and int(images) < 1:
        raise UserError(f"--images must be at least 1, got {images}")
    require_cppsim()  # first: nothing slow happens where cppsim cannot run
    board = load_board(board_name)
    v = prepare_verification(model_path, images, checkpoint, data, inputs)
    out = Path(out) / "hls"
    t0 = time.perf_counter()
    build(v.model_path, board_name, out, vendor_free=True, hw_backend="hls")
    build_s = round(time.perf_counter() - t0, 1)
    bdir = build_dir_for(v.model_path, board, out)
    with finn_log_to(bdir / "finn.log"):
        model = codegen_model(bdir)
        sim = LayerwiseSim(model, bdir / "cppsim")
        result = run_and_compare(sim, stage_input(model, v.p, 1.0), seed, progress, label_of=host_labels(bdir))
    result.update({**v.summary(), "board": board.name})
    result["timings"] = {"build_s": build_s, **sim.timings, **result["timings"]}
    compare_references(result, v)
    write_json(bdir / "verify_cppsim.json", result)
    write_text(bdir / "verify_cppsim.md", render_markdown(result))
    return result


def render_markdown(r: dict) -> str:
    n, t = r["images"], r["timings"]
    lines = [
        f"# cppsim of the whole HLS accelerator ({Path(r['model']).name}, {r['board']})", "",
        f"**{'PASSED' if r['passed'] else 'FAILED'}** on {n} images: {r['hls_layers']} FINN "
        f"HLS layers in cppsim (g++, finn-hlslib), {r['rtl_layers']} RTL layers in Verilator (input gaps and "
        "back-pressure 20%), each layer fed by the simulated layers before it.", "", inputs_line(r), "",
        *checks_table(r),
    ]
    lines += ["", f"Time: {t['seconds_per_image']:.2f} s per image simulated ({t['simulation_s']:,.0f} s in all); "
              f"cppsim compile {t['cppsim_compile_s']:,.0f} s, Verilator builds {t['verilator_build_s']:,.0f} s, "
              f"vendor-free build {t['build_s']:,.0f} s.", "",
              "| layer | op | simulated in | output equal to FINN python |", "|---|---|---|---|"]
    for row in r["layers"]:
        lines.append(f"| {row['layer']} | {row['op_type']} | {row['sim']} | "
                     f"{'yes' if row['equal'] else '**NO**'} ({row['images']} images) |")
    return "\n".join(lines) + "\n"
