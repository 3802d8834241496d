"""This project's FINN build steps after the lowering (flows/lowering.py): plain ``(model, cfg)
-> model`` functions that FINN's builder runs from the step list of a ``WrnBuildConfig``
(flows/build.py). FINN saves each step's output model as intermediate_models/<step>.onnx.

Each step also writes what it found into the build folder (cfg.output_dir), where later steps,
the report and a user's own steps read it, as FINN's own steps do:

  tail.onnx                         the float nodes after the accelerator's output (the host runs
                                    them; flows.float_tail), only where there are any
  head.onnx                         the float nodes in front of the input quantizer (the host runs
                                    them; flows.float_head), only where there are any
  host.json                         what runs on the host, what the accelerator takes and gives
  folding_config.json, folding.json PE / SIMD for the board (flows.folding): FINN's ApplyConfig
                                    format, and the per-layer estimates behind it
  report/estimate_*.json, estimates.json   FINN's step_generate_estimate_reports
  project_rtl.json                  the layers left in HLS where this project has no RTL, and
                                    the finn-rtllib layers kept where its own would not pay
  codegen.json                      what FINN's step_hw_codegen wrote per layer
  synthesis.json, synth/            the yosys estimate of the generated RTL
  report.{json,md,png}              the build report (flows/report.py)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from common.atomic import atomic_path, write_json
from common.boards import load_board
from flows.float_tail import float_tail_of
from flows.report import design_summary, write_report

# the build's stages: FINN saves each as intermediate_models/<step>.onnx
STAGE_STEPS = {"finn": "step_wrn_tidy", "streamlined": "step_wrn_streamline", "hw": "step_wrn_convert_to_hw",
               "dataflow": "step_wrn_specialize_layers", "folded": "step_wrn_fold", "rtl": "step_wrn_project_rtl",
               "codegen": "step_wrn_codegen"}


def stage_path(build_dir, stage: str) -> Path:
    """A stage's ONNX file in a build folder."""
    return Path(build_dir) / "intermediate_models" / f"{STAGE_STEPS[stage]}.onnx"


def out_path(cfg, name: str) -> Path:
    return Path(cfg.output_dir) / name


def read_json(cfg, name: str) -> dict:
    path = out_path(cfg, name)
    return json.loads(path.read_text()) if path.is_file() else {}


def board_of(cfg):
    return load_board(cfg.wrn_board, Path(cfg.wrn_boards_dir))


def _console():
    """The terminal, also while FINN's builder wraps sys.stdout in its log."""
    return getattr(sys.stdout, "console", sys.stdout)


def step_wrn_save_float_tail(model, cfg):
    """The host's parts, saved before the dataflow partition drops the metadata that carries them:
    tail.onnx (the float tail the lowering cut off, flows.float_tail), head.onnx (the float ops in
    front of the input quantizer, flows.float_head), and host.json saying what runs where and
    what the accelerator takes and gives. An earlier build's head / tail is removed where there
    is none."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.float_head import describe_input, float_head_of
    from flows.model_file import read_onnx

    for name, part in (("tail.onnx", float_tail_of(model)), ("head.onnx", float_head_of(model))):
        path = out_path(cfg, name)
        if part is not None:
            with atomic_path(path) as tmp:
                part.save(str(tmp))
        elif path.exists():
            path.unlink()
    qonnx = ModelWrapper(read_onnx(cfg.model_path))  # the model as given (checked when the build began)
    write_json(out_path(cfg, "host.json"), {"input": describe_input(qonnx, model),
                                            "output": describe_output(model)})
    return model


def describe_output(model) -> dict:
    """The accelerator's output and what the host does with it (the float tail, if any)."""
    oname = model.graph.output[0].name
    tail = float_tail_of(model)
    out = {"datatype": model.get_tensor_datatype(oname).name, "shape": list(model.get_tensor_shape(oname))}
    if tail is None:
        return {"accelerator_output": out, "tail": None,
                "summary": f"the accelerator outputs {out['datatype']} {'x'.join(map(str, out['shape']))}; no host step"}
    ops = [n.op_type for n in tail.graph.node]
    return {"accelerator_output": out, "tail": "tail.onnx", "ops": ops,
            "summary": f"the accelerator outputs {out['datatype']} {'x'.join(map(str, out['shape']))}; the host runs "
                       f"the float tail (tail.onnx: {', '.join(ops)}) on it"}


def step_wrn_fold(model, cfg):
    """PE / SIMD for the board: cfg.folding_config_file as given, else the fastest folding that
    fits the board's budget less cfg.wrn_margin (flows.folding: FINN's estimates, and for the MVAUs
    that become this project's RTL its cost model), with each such MVAU's weight memory chosen."""
    from flows.folding import choose_folding, folding_config, layers_as_dicts

    result = choose_folding(model, board_of(cfg), cfg.wrn_margin, cfg.folding_config_file, cfg.mvau_wwidth_max,
                            cfg.wrn_hw_backend)
    write_json(out_path(cfg, "folding_config.json"), folding_config(result))
    write_json(out_path(cfg, "folding.json"), {
        "source": result.source, "target_cycles": result.target_cycles, "limit": result.limit, "trials": result.trials,
        "budget": result.budget, "layers": layers_as_dicts(result.layers)})
    return result.model


def step_wrn_estimate_reports(model, cfg):
    """FINN's own step_generate_estimate_reports (report/estimate_*.json); a failure is recorded
    in estimates.json, not fatal: the build report has the same estimates from the folding."""
    from finn.builder.build_dataflow_steps import step_generate_estimate_reports

    try:
        model = step_generate_estimate_reports(model, cfg)
    except Exception as e:
        write_json(out_path(cfg, "estimates.json"), {"ok": False, "error": f"{type(e).__name__}: {e}"})
        return model
    report_dir = Path(cfg.output_dir) / "report"
    files = sorted(str(p.relative_to(cfg.output_dir)) for p in report_dir.glob("estimate_*.json"))
    write_json(out_path(cfg, "estimates.json"), {"ok": True, "files": files})
    return model


def step_wrn_project_rtl(model, cfg):
    """This project's RTL in place of the folded HLS layers (hw.transformation.UseProjectRTL;
    cfg.wrn_hw_backend "hls" keeps FINN's), with width converters where a producer's folding
    differs from its consumer's (FINN inserts them in its Vivado-only FIFO step; the stitched
    RTL needs them now)."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    from hw.transformation import UseProjectRTL

    model = model.transform(InsertDWC())
    model = model.transform(SpecializeLayers(cfg.fpga_part))
    model = model.transform(GiveUniqueNodeNames())
    swap = UseProjectRTL(cfg.wrn_hw_backend)
    model = model.transform(swap)
    write_json(out_path(cfg, "project_rtl.json"), {"kept_hls": swap.kept, "kept_finn_rtl": swap.kept_finn_rtl})
    return model


def step_wrn_codegen(model, cfg):
    """FINN's step_hw_codegen (PrepareIP): RTL for the RTL layers, HLS C++ + Tcl for the HLS
    layers; codegen.json says what it wrote per layer and what still needs a vendor tool."""
    from finn.builder.build_dataflow_steps import step_hw_codegen
    from qonnx.custom_op.registry import getCustomOp

    try:
        model = step_hw_codegen(model, cfg)
    except Exception as e:
        write_json(out_path(cfg, "codegen.json"), {"ok": False, "error": f"{type(e).__name__}: {e}",
                                                   "summary": "FINN's step_hw_codegen failed; no code generated"})
        return model
    layers = []
    for node in model.graph.node:
        folder = Path(getCustomOp(node).get_nodeattr("code_gen_dir_ipgen"))
        hls = node.op_type.endswith("_hls")
        layers.append({"name": node.name, "op_type": node.op_type, "dir": str(folder),
                       "files": sorted(p.name for p in folder.iterdir()) if folder.is_dir() else [],
                       "kind": "HLS C++ + Tcl" if hls else "RTL",
                       "still_needs": "Vitis HLS synthesis (step_hw_ipgen)" if hls else "Vivado IP packaging (step_hw_ipgen)"})
    n_hls = sum(la["op_type"].endswith("_hls") for la in layers)
    summary = (f"{len(layers) - n_hls} RTL layers: Verilog/SystemVerilog generated"
               + (f"; {n_hls} HLS layers: C++ and HLS Tcl generated, their RTL needs Vitis HLS (step_hw_ipgen)"
                  if n_hls else "; no HLS layers (no Vitis HLS needed)") + f"; code under {cfg.wrn_codegen_dir}")
    write_json(out_path(cfg, "codegen.json"), {"ok": True, "summary": summary, "rtl_layers": len(layers) - n_hls,
                                               "hls_layers": n_hls, "layers": layers})
    return model


def step_wrn_synth_estimate(model, cfg):
    """yosys synth_xilinx of every generated layer against the whole board (margin 0: the folding
    margin is for FINN's estimates; this says how much of the chip the RTL takes), cfg.wrn_synth_jobs
    yosys processes at a time; synthesis.json."""
    if not cfg.wrn_synth:
        section = {"skipped": "not run (--no-synth, or a build made for `make verify`; `make bitstream` runs it)"}
    elif not read_json(cfg, "codegen.json").get("ok"):
        section = {"skipped": "not run: FINN's code generation failed, there is no RTL to synthesize"}
    else:
        from hw.synth.accelerator import synthesis_section

        def progress(done: int, total: int, layer: str) -> None:
            print(f"[flows] yosys {done}/{total}: {layer}", file=_console(), flush=True)

        section = synthesis_section(model, board_of(cfg), cfg.output_dir, jobs=cfg.wrn_synth_jobs, progress=progress)
    write_json(out_path(cfg, "synthesis.json"), section)
    return model


def step_wrn_report(model, cfg):
    """report.{json,md,png} from what the steps before wrote (flows/report.py renders it)."""
    write_report(cfg.output_dir, build_report(cfg))
    return model


def build_report(cfg) -> dict:
    """The report of a build from what its steps wrote into cfg.output_dir (flows/build_steps.py)."""
    board = board_of(cfg)
    folding = read_json(cfg, "folding.json")
    codegen = read_json(cfg, "codegen.json")
    codegen["kept_hls"] = read_json(cfg, "project_rtl.json").get("kept_hls", {})
    layers = folding["layers"]
    return {
        "model": str(cfg.model_path), "board": board.name, "part": board.part, "margin": cfg.wrn_margin,
        "build_dir": str(cfg.output_dir), "stages": stage_files(cfg),
        "folding": {"source": folding["source"], "target_cycles": folding["target_cycles"],
                    "limit": folding.get("limit"),
                    "trials": folding["trials"], "config": "folding_config.json",
                    "mvau_wwidth_max": cfg.mvau_wwidth_max},
        "layers": layers,
        "summary": design_summary(layers, board.resources, folding["budget"], board.clock_mhz),
        "finn_estimate_reports": read_json(cfg, "estimates.json"), "codegen": codegen,
        "synthesis": read_json(cfg, "synthesis.json"), "host": read_json(cfg, "host.json"),
        "vendor_steps": {"done": [], "stopped_at": cfg.wrn_vendor_stop, "reason": cfg.wrn_vendor_stop_reason},
    }


def stage_files(cfg) -> dict[str, str]:
    """Each stage's ONNX file, relative to the build folder (FINN's intermediate models)."""
    return {"qonnx": str(cfg.model_path), **{stage: str(stage_path(".", stage)) for stage in STAGE_STEPS}}
