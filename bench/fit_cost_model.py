"""Fit hw/synth/cost_model.py's LUT model of the bipolar MVAU to yosys runs of real layers.

    python bench/fit_cost_model.py [--build build/fmnist_wrn8_3_w1a2_pynq-z2 ...] [--jobs 2] [--fifos]

Every MVAUBipolar_rtl layer of each build (its code-generated graph) is synthesized with its
weight ROM in block RAM and in LUTs (two yosys runs per layer, cached in the build's
synth_cost/ folder). The coefficients are a non-negative least-squares fit (rows weighted by
1/sqrt(LUTs)) of LUT counts to
the model's features; they go to hw/synth/mvau_bipolar_cost.yaml (the folding reads them), and
every layer's yosys count next to the model's to bench/results/cost_model.{json,md}.
--fifos: only the model of the FIFOs between layers (hw/synth/stream_fifo_cost.yaml), from the sized
FIFOs in the builds' synthesis.json (run `make verify`, then `make bitstream`, first).
"""

from __future__ import annotations

import argparse
import copy
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.paths import repo_relative  # noqa: E402
from common.atomic import write_json, write_text  # noqa: E402

RESULTS = ROOT / "bench" / "results"
STYLES = ("block", "distributed")


def layer_runs(build: Path):
    """(name, shape, style, top, files, FINN's BRAM36 count) for every MVAUBipolar_rtl layer of the build and style."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    import hw.custom_op  # noqa: F401  (registers the project's ops)
    from hw.synth.cost_model import shape_of

    model = ModelWrapper(str(build / "intermediate_models" / "step_wrn_codegen.onnx"))
    runs = []
    for node in model.graph.node:
        if node.op_type != "MVAUBipolar_rtl":
            continue
        for style in STYLES:
            folder = build / "synth_cost" / f"{node.name}_{style}"
            folder.mkdir(parents=True, exist_ok=True)
            tmp = ModelWrapper(copy.deepcopy(model.model))
            n = next(x for x in tmp.graph.node if x.name == node.name)
            op = getCustomOp(n)
            op.set_nodeattr("ram_style", style)
            op.set_nodeattr("code_gen_dir_ipgen", str(folder))
            op.generate_hdl(tmp, "xc7z020clg400-1", 10.0)
            top = op.get_nodeattr("gen_top_module")
            files = [Path(f) for f in op.get_rtl_file_list(abspath=True)]
            finn_bram36 = op.bram_estimation("xc7z020clg400-1") / 2 if style == "block" else 0.0
            runs.append((f"{build.name}/{node.name}", shape_of(model, node), style, top, files, finn_bram36))
    return runs


def fifo_rows(build: Path) -> list[dict]:
    """Every sized FIFO of the build's yosys estimate (synthesis.json, after `make verify`), one row
    per instance: its width, depth and LUTs."""
    import json
    import re

    from hw.synth.accelerator import FIFO_KIND
    from hw.synth.cost_model import fifo_features

    rows = []
    for la in json.loads((build / "synthesis.json").read_text())["layers"]:
        if la.get("kind") != FIFO_KIND:
            continue
        depth, width = map(int, re.fullmatch(r"fifo_d(\d+)_w(\d+)", la["name"]).groups())
        rows += [{"layer": f"{build.name}/{la['name']}", "depth": depth, "width": width,
                  "features": fifo_features(width), "yosys_lut": la["LUT"]}] * int(la.get("copies", 1))
    return rows


def fit_fifos(builds: list[Path]) -> None:
    """The FIFO model (hw/synth/stream_fifo_cost.yaml) from the builds' sized FIFOs, unweighted: it
    stands for the sum over a design's FIFOs, so every LUT counts alike."""
    from scipy.optimize import nnls

    from hw.synth.cost_model import FIFO_COEFFICIENTS_FILE, FIFO_FEATURES

    rows = [r for b in builds for r in fifo_rows(b)]
    if not rows:
        raise SystemExit("no sized FIFOs in the builds' synthesis.json: run `make verify` and `make bitstream` first")
    a = np.array([[r["features"][k] for k in FIFO_FEATURES] for r in rows])
    b = np.array([r["yosys_lut"] for r in rows], dtype=float)
    coef = {k: round(float(c), 4) for k, c in zip(FIFO_FEATURES, nnls(a, b)[0])}
    model_total = sum(sum(coef[k] * v for k, v in r["features"].items()) for r in rows)
    text = ("# LUT model of a sized stream FIFO (hw/rtl/stream_fifo.sv) for the folding search, by its width\n"
            "# alone (its depth is found later, by simulation); fitted by `python bench/fit_cost_model.py --fifos`\n"
            f"# to the {len(rows)} FIFOs of {', '.join(repo_relative(b) for b in builds)}: {int(b.sum()):,} LUT in\n"
            f"# yosys, {model_total:,.0f} by the model (per FIFO it is a mean: shallow ones cost less, the deep ones\n"
            "# at the residual joins more).\n"
            + yaml.safe_dump({"fifo_lut": coef}, sort_keys=False))
    write_text(FIFO_COEFFICIENTS_FILE, text)
    print(text)


def finn_scales(builds: list[Path]) -> dict[str, dict]:
    """yosys / FINN LUTs per op type (without _hls / _rtl) over the builds' layers that FINN
    estimates: synthesis.json's per-layer yosys counts against folding.json's finn_LUT."""
    import json
    import re

    def plain(name: str) -> str:  # the folding's and the built graph's names of one layer agree without _hls/_rtl
        return re.sub(r"_(hls|rtl)(_|$)", r"\2", name)

    yosys, finn, count = {}, {}, {}
    for b in builds:
        synth = {plain(la["name"]): la for la in json.loads((b / "synthesis.json").read_text())["layers"]}
        for la in json.loads((b / "folding.json").read_text())["layers"]:
            base, built = plain(la["op_type"]), synth.get(plain(la["name"]))
            if (la.get("model") == "rtl" or not la.get("finn_LUT") or built is None
                    or base in ("StreamingDataWidthConverter", "StreamWidthConverter")):  # modelled
                continue
            yosys[base] = yosys.get(base, 0) + built["LUT"]
            finn[base] = finn.get(base, 0) + la["finn_LUT"]
            count[base] = count.get(base, 0) + 1
    return {k: {"scale": round(yosys[k] / finn[k], 3), "yosys": yosys[k], "finn": finn[k], "layers": count[k]}
            for k in sorted(finn)}


def fit(rows: list[dict], features: tuple[str, ...]) -> dict[str, float]:
    """Non-negative least squares of yosys' LUTs on the rows' features; adds model_lut and error to every row."""
    from scipy.optimize import nnls

    a = np.array([[r["features"][k] for k in features] for r in rows])
    b = np.array([r["yosys_lut"] for r in rows], dtype=float)
    # rows weighted by 1/sqrt(LUTs): unweighted, the 20,000-LUT layers set the constant and the
    # 130-LUT ones came out at twice their count (mean |error| 13%, worst 111%); by 1/sqrt, 4.7%
    # and 27%, the big layers as close as before (4%) and the total within 0.3%
    w = 1.0 / np.sqrt(np.maximum(b, 1.0))
    coef, _ = nnls(a * w[:, None], b * w)
    coef = {k: round(float(c), 4) for k, c in zip(features, coef)}
    for r in rows:
        r["model_lut"] = round(sum(coef[k] * v for k, v in r["features"].items()))
        r["error"] = (r["model_lut"] - r["yosys_lut"]) / r["yosys_lut"]
    return coef


def errors(rows: list[dict]) -> tuple[float, float]:
    """Mean and worst |relative error| of fitted rows."""
    return float(np.mean([abs(r["error"]) for r in rows])), max(abs(r["error"]) for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", type=Path, nargs="+", default=[ROOT / "build" / "fmnist_wrn8_3_w1a2_pynq-z2"])
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--fifos", action="store_true", help="fit only the FIFO model, from the builds' synthesis.json")
    args = ap.parse_args()
    if args.fifos:
        fit_fifos(args.build)
        return 0

    from hw.synth import synthesize
    from hw.synth.cost_model import COEFFICIENTS_FILE, FEATURES, features

    runs = [r for b in args.build for r in layer_runs(b)]

    def one(run):
        name, shape, style, top, files, finn_bram36 = run
        r = synthesize(top, files, "xc7", files[-1].parent / "work")
        print(f"{name} {style}: {r.LUT} LUT, {r.BRAM36:g} BRAM36 ({r.seconds:.0f} s)", flush=True)
        return {"layer": name, "style": style, "shape": shape.__dict__, "features": features(shape, style),
                "yosys_lut": r.LUT, "yosys_bram36": r.BRAM36, "finn_bram36": finn_bram36}

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(one, runs))
    coef = fit(rows, FEATURES)
    mean, worst = errors(rows)
    builds = [repo_relative(b) for b in args.build]
    scales = finn_scales(args.build)
    text = ("# LUT model of hw/rtl/mvu_bipolar.sv (hw/synth/cost_model.py), fitted by bench/fit_cost_model.py\n"
            f"# to {len(rows)} yosys runs (synth_xilinx -family xc7) of the MVAU layers of {', '.join(builds)},\n"
            "# each with its weights in block RAM and in LUTs; non-negative least squares, rows weighted by\n"
            "# 1/sqrt(LUTs).\n"
            f"# Mean |error| {100 * mean:.1f}%, worst {100 * worst:.1f}% (bench/results/cost_model.md).\n"
            + yaml.safe_dump({"lut": coef}, sort_keys=False)
            + "# Other layers keep FINN's estimate, scaled by yosys / FINN LUTs summed per op type over the same\n"
            + "# builds (synthesis.json vs folding.json's finn_LUT): "
            + "; ".join(f"{k} {v['yosys']:,} / {v['finn']:,.0f} in {v['layers']} layers"
                        for k, v in scales.items()) + "\n"
            + yaml.safe_dump({"finn_lut_scale": {k: v["scale"] for k, v in scales.items()}}, sort_keys=False))
    write_text(COEFFICIENTS_FILE, text)
    lines = ["# Cost model of the bipolar MVAU: yosys vs the fitted model", "",
             f"Command: `python bench/fit_cost_model.py --build {' '.join(builds)}`; coefficients in "
             "`hw/synth/mvau_bipolar_cost.yaml`: " + ", ".join(f"{k} {v:g}" for k, v in coef.items()) + ".", "",
             f"Mean |error| {100 * mean:.1f}%, worst {100 * worst:.1f}%.", "",
             "| layer | MW x MH | PE x SIMD | in | act | ROM depth | weights | yosys LUT | model LUT | error | "
             "yosys BRAM36 | FINN BRAM36 |",
             "|---|---|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        s = r["shape"]
        act = "none" if s["no_act"] else f"{s['nsteps']} thr"
        depth = (s["mw"] // s["simd"]) * (s["mh"] // s["pe"])
        lines.append(f"| {r['layer']} | {s['mw']} x {s['mh']} | {s['pe']} x {s['simd']} | {s['in_bits']} bit | "
                     f"{act} | {depth} | "
                     f"{r['style']} | {r['yosys_lut']:,} | {r['model_lut']:,} | {100 * r['error']:+.1f}% | "
                     f"{r['yosys_bram36']:g} | {r['finn_bram36']:g} |")
    write_json(RESULTS / "cost_model.json", {
        "command": "python bench/fit_cost_model.py", "builds": builds, "coefficients": coef, "finn_lut_scale": scales,
        "mean_abs_error": mean, "worst_abs_error": worst, "rows": rows})
    write_text(RESULTS / "cost_model.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
