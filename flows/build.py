"""The build driver behind `make bitstream`: QONNX model + board -> FINN dataflow accelerator.

Stages, each saved as ONNX in the build folder <out>/<model stem>_<board>/:

  qonnx.onnx        the model as given (after a check that its activations are quantized)
  finn.onnx         FINN-ONNX (step_wrn_tidy)
  streamlined.onnx  integers only (step_wrn_streamline)
  hw.onnx           FINN hardware layers (step_wrn_convert_to_hw)
  dataflow.onnx     the dataflow partition, specialized to HLS / RTL for the board's part
  folded.onnx       PE / SIMD chosen for the board (flows.folding); folding_config.json
  tail.onnx         only where float nodes follow the last integer tensor (flows.float_tail):
                    what the host computes from the accelerator's output

then, without vendor tools: FINN's step_generate_estimate_reports (report/*.json), FINN's
step_hw_codegen (RTL for the RTL layers, HLS C++ + Tcl for the HLS layers, under codegen/),
with ``synth=True`` (the CLI's default) a yosys synth_xilinx estimate of every layer's RTL
(hw.synth_accel, work folder synth/), and this project's report.{json,md,png}. With Vivado /
Vitis HLS present, FINN's own steps follow, in finn-plus' default order
(step_generate_hardware = codegen + ipgen + FIFO sizing):
step_hw_ipgen ... step_deployment_package. Without them the build stops with VendorStepsNeeded
(exit status 3), naming the first step that needs them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import atomic_path, write_json
from common.boards import BOARDS_DIR, DEFAULT_MARGIN, Board, check_margin, load_board
from common.errors import UserError
from train import DEFAULT_CONFIG

STAGES = ("qonnx", "finn", "streamlined", "hw", "dataflow", "folded")
# finn-plus 1.6.1's default steps after step_hw_codegen, in order (its step_generate_hardware
# is step_hw_codegen + step_hw_ipgen + step_set_fifo_depths).
VENDOR_STEPS = ("step_hw_ipgen", "step_set_fifo_depths", "step_create_stitched_ip",
                "step_measure_rtlsim_performance", "step_out_of_context_synthesis", "step_prepare_synthesis",
                "step_synthesize_bitfile", "step_make_driver", "step_deployment_package")
FIRST_VENDOR_STEP = "step_hw_ipgen: HLS synthesis of the HLS layers (Vitis HLS), IP packaging (Vivado)"


class VendorStepsNeeded(Exception):
    """The vendor-free part is done; the next step needs Vivado / Vitis HLS (exit status 3)."""


@dataclass
class Build:
    model_path: Path
    board: Board
    build_dir: Path
    margin: float = DEFAULT_MARGIN
    folding_file: Path | None = None
    mvau_wwidth_max: int = 36
    hw_backend: str = "rtl"  # "rtl": this project's RTL where it can; "hls": FINN's HLS layers
    synth: bool = False      # run the yosys estimate (minutes on first use; cached per layer after)
    synth_jobs: int = 1      # yosys processes at a time
    timings: dict = field(default_factory=dict)

    def path(self, name: str) -> Path:
        return self.build_dir / name


def build_dir_for(model_path: Path, board: Board, out: Path) -> Path:
    return Path(out) / f"{Path(model_path).stem}_{board.name}"


# ----------------------------------------------------------------------------------------------
# Input checks
# ----------------------------------------------------------------------------------------------

def load_model(path: Path):
    """The ONNX model, or one UserError line for a missing or unreadable file."""
    from qonnx.core.modelwrapper import ModelWrapper

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model not found: {path} (export one with `make export` or `make pretrained`)")
    try:
        model = ModelWrapper(str(path))
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for a foreign or cut file
        raise UserError(f"cannot read model {path}: not a valid ONNX file ({type(e).__name__})") from None
    if not model.graph.node:
        raise UserError(f"model {path} has no nodes")
    return model


def require_quantized_activations(model, path: Path) -> None:
    """FINN maps activations to thresholds: every Relu must feed a quantizer (Quant)."""
    for node in model.graph.node:
        if node.op_type != "Relu":
            continue
        consumers = model.find_consumers(node.output[0]) or []
        float_uses = [c for c in consumers if c.op_type not in ("Quant", "MultiThreshold")]
        if float_uses or not consumers:
            raise UserError(
                f"{path}: FINN needs quantized activations, but {node.name} (Relu) feeds "
                f"{float_uses[0].op_type if float_uses else 'the output'} without a quantizer "
                f"(a model trained with act_bits: null); train train/configs/{DEFAULT_CONFIG.name} instead")


# ----------------------------------------------------------------------------------------------
# Stages
# ----------------------------------------------------------------------------------------------

def dataflow_config(b: Build, vendor: bool = False):
    """FINN's build config for this board; vendor=True asks for the bitfile and its package."""
    from finn.builder.build_dataflow_config import DataflowBuildConfig, ShellFlowType
    from finn.builder.build_dataflow_config import DataflowOutputType as Out

    outputs = [Out.ESTIMATE_REPORTS]
    if vendor:
        outputs += [Out.STITCHED_IP, Out.RTLSIM_PERFORMANCE, Out.BITFILE, Out.PYNQ_DRIVER, Out.DEPLOYMENT_PACKAGE]
    return DataflowBuildConfig(
        output_dir=str(b.build_dir), synth_clk_period_ns=b.board.clock_ns, fpga_part=b.board.part,
        board=b.board.finn_board, shell_flow_type=ShellFlowType(b.board.shell_flow),
        vitis_platform=b.board.vitis_platform, generate_outputs=outputs, mvau_wwidth_max=b.mvau_wwidth_max,
        save_intermediate_models=True, steps=[])


def save_model(model, path: Path) -> None:
    with atomic_path(path) as tmp:
        model.save(str(tmp))


class _Timer:
    def __init__(self, timings: dict, name: str):
        self.timings, self.name = timings, name

    def __enter__(self):
        self.t0 = time.perf_counter()

    def __exit__(self, *exc):
        self.timings[self.name] = round(time.perf_counter() - self.t0, 3)


def lower(b: Build, cfg) -> dict:
    """qonnx ... dataflow stages (flows.streamline), each saved as <stage>.onnx."""
    from flows.lowering import lower_wrn

    with _Timer(b.timings, "lower"):
        stages = lower_wrn(b.model_path, b.build_dir, cfg=cfg, finn_dir=b.path("codegen"))
    for name in STAGES[:-1]:
        save_model(stages[name], b.path(f"{name}.onnx"))
    tail = b.path("tail.onnx")  # the float nodes after the accelerator's output, for the host
    if "tail" in stages:
        save_model(stages["tail"], tail)
    elif tail.exists():
        tail.unlink()  # from an earlier build of a model with a tail
    return stages


def fold(b: Build, dataflow_model):
    from flows.folding import choose_folding, folding_config

    with _Timer(b.timings, "folding"):
        result = choose_folding(dataflow_model, b.board, b.margin, b.folding_file, b.mvau_wwidth_max)
    save_model(result.model, b.path("folded.onnx"))
    write_json(b.path("folding_config.json"), folding_config(result))
    return result


def finn_estimate_reports(b: Build, model, cfg, steps) -> dict:
    """FINN's own step_generate_estimate_reports: report/estimate_*.json in the build folder."""
    with _Timer(b.timings, "estimate_reports"):
        try:
            model = steps.step_generate_estimate_reports(model, cfg)
        except Exception as e:  # recorded, not fatal: our own report has the same estimates
            return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    files = sorted(str(p.relative_to(b.build_dir)) for p in (b.build_dir / "report").glob("estimate_*.json"))
    return {"ok": True, "files": files}


def use_project_rtl(b: Build, model):
    """Replace the folded HLS layers by this project's RTL (hw.transformation.UseProjectRTL);
    saved as rtl.onnx. Returns the model and {node: why it stayed HLS}."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveUniqueNodeNames

    from hw.transformation import UseProjectRTL

    with _Timer(b.timings, "project_rtl"):
        # width converters where a producer's folding differs from its consumer's (FINN does
        # this inside its Vivado-only FIFO step; the stitched RTL needs it now)
        model = model.transform(InsertDWC())
        model = model.transform(SpecializeLayers(b.board.part))
        model = model.transform(GiveUniqueNodeNames())
        swap = UseProjectRTL(b.hw_backend)
        model = model.transform(swap)
    save_model(model, b.path("rtl.onnx"))
    return model, swap.kept


def generate_code(b: Build, model, cfg, steps):
    """FINN's step_hw_codegen (PrepareIP): what it wrote per layer, and what still needs a tool."""
    from qonnx.custom_op.registry import getCustomOp

    with _Timer(b.timings, "codegen"):
        try:
            model = steps.step_hw_codegen(model, cfg)
        except Exception as e:
            return model, {"ok": False, "error": f"{type(e).__name__}: {e}",
                           "summary": "FINN's step_hw_codegen failed; no code generated"}
    layers = []
    for node in model.graph.node:
        folder = Path(getCustomOp(node).get_nodeattr("code_gen_dir_ipgen"))
        files = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
        hls = node.op_type.endswith("_hls")
        layers.append({"name": node.name, "op_type": node.op_type, "dir": str(folder), "files": files,
                       "kind": "HLS C++ + Tcl" if hls else "RTL",
                       "still_needs": "Vitis HLS synthesis (step_hw_ipgen)" if hls else "Vivado IP packaging (step_hw_ipgen)"})
    n_hls = sum(la["op_type"].endswith("_hls") for la in layers)
    summary = (f"{len(layers) - n_hls} RTL layers: Verilog/SystemVerilog generated"
               + (f"; {n_hls} HLS layers: C++ and HLS Tcl generated, their RTL needs Vitis HLS (step_hw_ipgen)"
                  if n_hls else "; no HLS layers (no Vitis HLS needed)") + f"; code under {b.path('codegen')}")
    save_model(model, b.path("codegen.onnx"))
    return model, {"ok": True, "summary": summary, "rtl_layers": len(layers) - n_hls, "hls_layers": n_hls,
                   "layers": layers}


def synthesis_estimate(b: Build, model, codegen: dict, progress=None) -> dict:
    """yosys synth_xilinx per layer of the generated RTL, against the whole board (margin 0: the
    folding margin is for FINN's estimates; this says how much of the chip the RTL takes)."""
    if not b.synth:
        return {"skipped": "not run (--no-synth, or a build made for `make verify`; `make bitstream` runs it)"}
    if not codegen.get("ok"):
        return {"skipped": "not run: FINN's code generation failed, there is no RTL to synthesize"}
    from hw.synth.accelerator import synthesis_section

    with _Timer(b.timings, "synthesis"):
        return synthesis_section(model, b.board, b.build_dir, jobs=b.synth_jobs, progress=progress)


def run_vendor_steps(b: Build, model, steps) -> list[str]:
    """FINN's own steps after code generation, as in finn-plus' default build (needs Vivado)."""
    cfg = dataflow_config(b, vendor=True)
    done = []
    for name in VENDOR_STEPS:
        with _Timer(b.timings, name):
            model = getattr(steps, name)(model, cfg)
        save_model(model, b.path(f"after_{name}.onnx"))
        done.append(name)
    return done


def make_report(b: Build, folding, estimates: dict, codegen: dict, vendor: dict, synthesis: dict) -> dict:
    from flows.folding import layers_as_dicts
    from flows.report import design_summary

    layers = layers_as_dicts(folding.layers)
    return {
        "model": str(b.model_path), "board": b.board.name, "part": b.board.part, "margin": b.margin,
        "build_dir": str(b.build_dir), "stages": {s: f"{s}.onnx" for s in STAGES},
        "folding": {"source": folding.source, "target_cycles": folding.target_cycles, "trials": folding.trials,
                    "config": "folding_config.json", "mvau_wwidth_max": b.mvau_wwidth_max},
        "layers": layers,
        "summary": design_summary(layers, b.board.resources, folding.budget, b.board.clock_mhz),
        "finn_estimate_reports": estimates, "codegen": codegen, "synthesis": synthesis, "vendor_steps": vendor,
        "timings_s": dict(b.timings),
    }


# ----------------------------------------------------------------------------------------------
# The driver
# ----------------------------------------------------------------------------------------------

def build(model_path, board_name: str, out="build", folding_file=None, margin: float = DEFAULT_MARGIN,
          boards_dir: Path = BOARDS_DIR, vendor_free: bool = False, mvau_wwidth_max: int = 36,
          hw_backend: str = "rtl", synth: bool = False, synth_jobs: int = 1, progress=None) -> dict:
    """Run the build; return the report. Raises UserError (bad input), LoweringError (a node
    FINN cannot map) and VendorStepsNeeded (done without vendor tools; Vivado/Vitis absent).
    vendor_free=True stops after the vendor-free part, whether the tools are present or not.
    hw_backend: "rtl" (default) puts this project's RTL in place of FINN's HLS layers after
    folding; "hls" keeps FINN's HLS layers (their RTL then needs Vitis HLS).
    synth: add the yosys resource estimate of the generated RTL (report section "synthesis"),
    ``synth_jobs`` yosys processes at a time; progress(done, total, layer) after each layer."""
    from flows.finn_env import finn_log_to, import_finn, missing_vendor_tools
    from flows.report import write_report

    board = load_board(board_name, boards_dir)  # first: an unknown board costs nothing
    check_margin(margin)  # before the expensive part
    model = load_model(Path(model_path))
    require_quantized_activations(model, Path(model_path))
    if hw_backend not in ("rtl", "hls"):
        raise UserError(f"hw backend must be 'rtl' or 'hls', got {hw_backend!r}")
    if synth_jobs < 1:
        raise UserError(f"synth jobs must be >= 1, got {synth_jobs}")
    b = Build(Path(model_path), board, build_dir_for(model_path, board, Path(out)), margin,
              Path(folding_file) if folding_file else None, mvau_wwidth_max, hw_backend, synth, synth_jobs)
    b.build_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    steps = import_finn(b.path("codegen"))
    with finn_log_to(b.path("finn.log")):
        cfg = dataflow_config(b)
        stages = lower(b, cfg)
        folding = fold(b, stages["dataflow"])
        estimates = finn_estimate_reports(b, folding.model, cfg, steps)
        model, kept_hls = use_project_rtl(b, folding.model)
        model, codegen = generate_code(b, model, cfg, steps)
        codegen["kept_hls"] = kept_hls
        synthesis = synthesis_estimate(b, model, codegen, progress)
        b.timings["vendor_free_total"] = round(time.perf_counter() - t0, 3)
        vendor = {"done": [], "stopped_at": None, "reason": None}
        if vendor_free:
            vendor.update(stopped_at=VENDOR_STEPS[0], reason="not run (--vendor-free)")
        elif missing_vendor_tools():
            vendor.update(stopped_at=VENDOR_STEPS[0], reason=missing_vendor_tools())
        report = make_report(b, folding, estimates, codegen, vendor, synthesis)
        write_report(b.build_dir, report)
        if vendor["stopped_at"]:
            if vendor_free:
                return report
            raise VendorStepsNeeded(vendor_stop_message(b, report, vendor["reason"]))
        vendor["done"] = run_vendor_steps(b, model, steps)
        report = make_report(b, folding, estimates, codegen, vendor, synthesis)
        write_report(b.build_dir, report)
    return report


def synthesis_summary(section: dict) -> str:
    """The yosys estimate in a few words, for the one-line exit message."""
    if "totals" not in section:
        return ""
    t, pct = section["totals"], section["used_pct"]
    used = ", ".join(f"{t[k]:,.0f} {k} ({pct[k]:.0f}%)" for k in ("LUT", "FF", "BRAM36") if pct.get(k) is not None)
    return f", yosys estimate {used}" + ("" if section.get("complete") else " (incomplete)")


def vendor_stop_message(b: Build, report: dict, missing: str) -> str:
    s, c = report["summary"], report["codegen"]
    made = (f"stage ONNX files, folding for est. {s['estimated_fps']:,.0f} FPS "
            f"({s['percent_of_board']['LUT']:.0f}% LUT, {s['percent_of_board']['BRAM36']:.0f}% BRAM36), "
            f"FINN estimate reports, report.md/json/png"
            + (f", RTL for {c['rtl_layers']} layers and HLS C++ for {c['hls_layers']} layers" if c.get("ok") else "")
            + synthesis_summary(report.get("synthesis") or {}))
    return (f"{missing}: stopped before {FIRST_VENDOR_STEP}; "
            f"produced in {b.build_dir}: {made}")
