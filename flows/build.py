"""The build behind `make bitstream` (`wrn1bit build`): QONNX model + board -> FINN dataflow
accelerator, run by FINN's own builder.

``build`` makes a ``WrnBuildConfig`` (FINN's DataflowBuildConfig plus this project's options)
whose ``steps`` list holds this project's steps (plain ``(model, cfg) -> model`` functions,
flows/lowering.py and flows/build_steps.py) and FINN's own steps by name, and hands it to FINN's
``build_dataflow_cfg``:

  step_wrn_tidy ... step_wrn_specialize_layers   the lowering to FINN hardware layers
  step_wrn_save_float_tail                       tail.onnx, the float nodes the host runs
  step_wrn_fold                                  PE / SIMD for the board
  step_wrn_estimate_reports                      FINN's estimate reports
  step_wrn_project_rtl                           this project's RTL in place of HLS layers
  step_wrn_codegen                               FINN's code generation
  step_wrn_synth_estimate                        yosys estimate of the generated RTL
  step_wrn_report                                report.{json,md,png}
  step_hw_ipgen ... step_deployment_package      FINN's vendor steps (Vivado / Vitis HLS)

FINN saves every step's model as <build>/intermediate_models/<step>.onnx and its log as
build_dataflow.log. Without Vivado / Vitis HLS the build stops after step_wrn_report
(cfg.stop_step) and ``build`` raises VendorStepsNeeded (exit status 3), naming the first step
that needs them. A user adds a step as FINN documents it: ``extra_steps={"after": {"step_wrn_fold":
[my_step]}}`` here (FINN's inject_steps_after / inject_steps_before), or a config of their own
from ``wrn_build_config`` with another ``steps`` list.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from finn.builder.build_dataflow_config import DataflowBuildConfig

from common.boards import BOARDS_DIR, DEFAULT_MARGIN, Board, check_margin, load_board
from common.errors import UserError
from flows.build_steps import (
    STAGE_STEPS,
    build_report,
    stage_path,
    step_wrn_codegen,
    step_wrn_estimate_reports,
    step_wrn_fold,
    step_wrn_project_rtl,
    step_wrn_report,
    step_wrn_save_float_tail,
    step_wrn_synth_estimate,
)
from flows.graph import LoweringError
from flows.lowering import step_wrn_convert_to_hw, step_wrn_specialize_layers, step_wrn_streamline, step_wrn_tidy
from flows.report import write_report
from train import DEFAULT_CONFIG

# finn-plus 1.6.1's default steps after step_hw_codegen, in order (its step_generate_hardware
# is step_hw_codegen + step_hw_ipgen + step_set_fifo_depths).
VENDOR_STEPS = ["step_hw_ipgen", "step_set_fifo_depths", "step_create_stitched_ip",
                "step_measure_rtlsim_performance", "step_out_of_context_synthesis", "step_prepare_synthesis",
                "step_synthesize_bitfile", "step_make_driver", "step_deployment_package"]
WRN_STEPS = [step_wrn_tidy, step_wrn_streamline, step_wrn_convert_to_hw, step_wrn_save_float_tail,
             "step_create_dataflow_partition", step_wrn_specialize_layers, step_wrn_fold, step_wrn_estimate_reports,
             step_wrn_project_rtl, step_wrn_codegen, step_wrn_synth_estimate, step_wrn_report, *VENDOR_STEPS]
LAST_VENDOR_FREE_STEP = "step_wrn_report"
FIRST_VENDOR_STEP = "step_hw_ipgen: HLS synthesis of the HLS layers (Vitis HLS), IP packaging (Vivado)"
STAGES = ("qonnx", *STAGE_STEPS)
# the errors a step raises that the command line reports in one line
ONE_LINE_ERRORS = (UserError, LoweringError)


class VendorStepsNeeded(Exception):
    """The vendor-free part is done; the next step needs Vivado / Vitis HLS (exit status 3)."""


class BuildFailed(RuntimeError):
    """One of FINN's own steps failed; FINN printed the traceback and logged it."""


@dataclass
class WrnBuildConfig(DataflowBuildConfig):
    """FINN's build config, plus what this project's steps read (prefixed wrn_)."""

    wrn_board: str = "pynq-z2"            # boards/<name>.yaml
    wrn_boards_dir: str = str(BOARDS_DIR)
    wrn_margin: float = DEFAULT_MARGIN     # share of every resource the folding leaves free
    wrn_hw_backend: str = "rtl"            # "rtl": this project's RTL where it can; "hls": FINN's HLS layers
    wrn_synth: bool = False                # the yosys estimate (minutes on first use; cached per layer)
    wrn_synth_jobs: int = 1                # yosys processes at a time
    wrn_codegen_dir: str = ""              # FINN's working folder (FINN_BUILD_DIR): generated code
    wrn_vendor_stop: str | None = None     # the step the build stops before, without vendor tools
    wrn_vendor_stop_reason: str | None = None


def build_dir_for(model_path: Path, board: Board, out: Path) -> Path:
    return Path(out) / f"{Path(model_path).stem}_{board.name}"


def load_model(path: Path):
    """The ONNX model, or one UserError line for a missing, unreadable or refused file
    (flows.model_file: external data outside the model's folder, unsafe names, FINN hardware layers)."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.model_file import read_onnx

    path = Path(path)
    if not path.is_file():
        raise UserError(f"model not found: {path} (export one with `make export` or `make pretrained`)")
    model = ModelWrapper(read_onnx(path))
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


def wrn_build_config(model_path, board: Board, build_dir: Path, vendor: bool, **options) -> WrnBuildConfig:
    """The config ``build`` runs: FINN's options for the board, this project's step list."""
    from finn.builder.build_dataflow_config import DataflowOutputType as Out
    from finn.builder.build_dataflow_config import LogLevel, ShellFlowType

    outputs = [Out.ESTIMATE_REPORTS]
    if vendor:
        outputs += [Out.STITCHED_IP, Out.RTLSIM_PERFORMANCE, Out.BITFILE, Out.PYNQ_DRIVER, Out.DEPLOYMENT_PACKAGE]
    return WrnBuildConfig(
        output_dir=str(build_dir), model_path=Path(model_path), synth_clk_period_ns=board.clock_ns,
        fpga_part=board.part, board=board.finn_board, shell_flow_type=ShellFlowType(board.shell_flow),
        vitis_platform=board.vitis_platform, generate_outputs=outputs, save_intermediate_models=True,
        console_log_level=LogLevel.NONE,  # FINN's errors go to build_dataflow.log; the CLI prints one line
        steps=list(WRN_STEPS), wrn_board=board.name, **options)


def _one_line_errors(step, failures: list):
    """``step`` with this project's one-line errors kept for ``build`` to raise again: FINN's
    builder catches every exception of a step (re-raising only under pytest)."""
    from finn.util.exception import FINNUserError

    def run(model, cfg):
        try:
            return step(model, cfg)
        except ONE_LINE_ERRORS as e:
            failures.append(e)
            raise FINNUserError(str(e)) from e

    run.__name__, run.__doc__ = step.__name__, step.__doc__
    return run


def run_finn_builder(cfg: WrnBuildConfig) -> None:
    """FINN's build_dataflow_cfg on cfg; this project's errors come out as raised in the step,
    a failure of FINN's own steps as BuildFailed."""
    from finn.builder.build_dataflow import build_dataflow_cfg
    from finn.util.exception import FINNUserError

    from flows.finn_env import finn_builder_session

    failures: list[Exception] = []
    cfg.steps = [_one_line_errors(s, failures) if callable(s) else s for s in cfg.steps]
    with finn_builder_session():
        try:
            status = build_dataflow_cfg(str(cfg.model_path), cfg)
        except FINNUserError:  # raised through under pytest
            if not failures:
                raise
            status = -1
    if failures:
        raise failures[0]
    if status != 0:
        raise BuildFailed(f"FINN's build stopped in one of its steps; see {Path(cfg.output_dir) / 'build_dataflow.log'}")


def build(model_path, board_name: str, out="build", folding_file=None, margin: float = DEFAULT_MARGIN,
          boards_dir: Path = BOARDS_DIR, vendor_free: bool = False, mvau_wwidth_max: int = 36,
          hw_backend: str = "rtl", synth: bool = False, synth_jobs: int = 1, extra_steps=None) -> dict:
    """Run the build; return the report. Raises UserError (bad input), LoweringError (a node
    FINN cannot map) and VendorStepsNeeded (done without vendor tools; Vivado/Vitis absent).
    vendor_free=True stops after the vendor-free part, whether the tools are present or not.
    hw_backend: "rtl" (default) puts this project's RTL in place of FINN's HLS layers after
    folding; "hls" keeps FINN's HLS layers (their RTL then needs Vitis HLS).
    synth: add the yosys resource estimate of the generated RTL (report section "synthesis"),
    ``synth_jobs`` yosys processes at a time. extra_steps: {"before" | "after": {step name:
    [steps]}}, FINN's inject_steps_before / inject_steps_after."""
    from flows.finn_env import import_finn, missing_vendor_tools

    board = load_board(board_name, boards_dir)  # first: an unknown board costs nothing
    check_margin(margin)  # before the expensive part
    model_path = Path(model_path)
    require_quantized_activations(load_model(model_path), model_path)
    if hw_backend not in ("rtl", "hls"):
        raise UserError(f"hw backend must be 'rtl' or 'hls', got {hw_backend!r}")
    if synth_jobs < 1:
        raise UserError(f"synth jobs must be >= 1, got {synth_jobs}")
    if folding_file is not None and not Path(folding_file).is_file():
        raise UserError(f"folding file not found: {folding_file}")
    build_dir = build_dir_for(model_path, board, Path(out))
    build_dir.mkdir(parents=True, exist_ok=True)
    codegen_dir = build_dir / "codegen"
    import_finn(codegen_dir)
    missing = None if vendor_free else missing_vendor_tools()
    cfg = wrn_build_config(
        model_path, board, build_dir, vendor=not vendor_free and not missing, wrn_boards_dir=str(boards_dir),
        wrn_margin=margin, folding_config_file=Path(folding_file) if folding_file else None,
        mvau_wwidth_max=mvau_wwidth_max, wrn_hw_backend=hw_backend, wrn_synth=synth, wrn_synth_jobs=synth_jobs,
        wrn_codegen_dir=str(codegen_dir))
    if vendor_free or missing:
        cfg.stop_step = LAST_VENDOR_FREE_STEP
        cfg.wrn_vendor_stop = VENDOR_STEPS[0]
        cfg.wrn_vendor_stop_reason = "not run (--vendor-free)" if vendor_free else missing
    for where, steps in (extra_steps or {}).items():
        getattr(cfg, f"inject_steps_{where}").update(steps)
    run_finn_builder(cfg)
    report = finish_report(cfg)
    if missing:
        raise VendorStepsNeeded(vendor_stop_message(build_dir, report, missing))
    return report


def finish_report(cfg: WrnBuildConfig) -> dict:
    """report.json with FINN's time per step and, after a full build, the vendor steps done."""
    build_dir = Path(cfg.output_dir)
    report = build_report(cfg)
    times = build_dir / "report" / "time_per_step.json"
    report["timings_s"] = json.loads(times.read_text()) if times.is_file() else {}
    if cfg.stop_step is None:
        report["vendor_steps"]["done"] = [s for s in VENDOR_STEPS if (build_dir / "intermediate_models" /
                                                                     f"{s}.onnx").is_file()]
    write_report(build_dir, report)
    return report


def codegen_model(build_dir):
    """The code-generated graph of a build (what the simulations run)."""
    from qonnx.core.modelwrapper import ModelWrapper

    return ModelWrapper(str(stage_path(build_dir, "codegen")))


def synthesis_summary(section: dict) -> str:
    """The yosys estimate in a few words, for the one-line exit message."""
    if "totals" not in section:
        return ""
    t, pct = section["totals"], section["used_pct"]
    used = ", ".join(f"{t[k]:,.0f} {k} ({pct[k]:.0f}%)" for k in ("LUT", "FF", "BRAM36") if pct.get(k) is not None)
    return f", yosys estimate {used}" + ("" if section.get("complete") else " (incomplete)")


def vendor_stop_message(build_dir: Path, report: dict, missing: str) -> str:
    s, c = report["summary"], report["codegen"]
    made = (f"stage ONNX files, folding for est. {s['estimated_fps']:,.0f} FPS "
            f"({s['percent_of_board']['LUT']:.0f}% LUT, {s['percent_of_board']['BRAM36']:.0f}% BRAM36), "
            f"FINN estimate reports, report.md/json/png"
            + (f", RTL for {c['rtl_layers']} layers and HLS C++ for {c['hls_layers']} layers" if c.get("ok") else "")
            + synthesis_summary(report.get("synthesis") or {}))
    return f"{missing}: stopped before {FIRST_VENDOR_STEP}; produced in {build_dir}: {made}"
