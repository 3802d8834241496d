"""FINN's own networks through this flow on one board: the accelerator simulated and synthesized.

For each network (train.finn_examples, FINN's ToTensor recipe: UINT8 pixels in, as FINN's
end-to-end examples build them; untrained weights: accuracy is not the point, the hardware is):

  1. `python -m hw verify --images N`: the build for `make verify`, its FIFOs sized by
     simulation, the whole accelerator in Verilator on N random images against the QONNX model
     (labels and output integers), cycles per image without gaps;
  2. `python -m flows build`: the same build with the yosys estimate of every RTL module and
     the sized FIFOs (exit 3: the rest needs Vivado).

Each step runs in a child process: its wall time and peak RSS are its own. FINN's published
figures for the same networks on the same chip are listed beside them (BNN-PYNQ, Pynq-Z1,
xc7z020, 100 MHz, after Vivado, measured on the board).

    python bench/bnn_pynq.py [--networks cnv_1w1a tfc_1w1a ...] [--board pynq-z2] [--images 20] [--work DIR]

Writes bench/results/bnn_pynq.{json,md} after every network; with --work a rerun resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# BNN-PYNQ's own measurements (Pynq-Z1, same xc7z020 part as the Pynq-Z2, 100 MHz, Vivado):
# throughput on the board, LUT and BRAM36 after implementation (../shared/TOOLCHAIN.md anchors)
FINN_PUBLISHED = {"cnv_1w1a": {"fps": 3020, "LUT": 26072, "BRAM36": 124}}
DEFAULT_NETWORKS = ("cnv_1w1a", "cnv_1w2a", "lfc_1w1a", "sfc_1w1a", "tfc_1w1a")


def child(cmd: list[str], ok=(0,)) -> tuple[float, float, str]:
    """Run one step in a child process: (wall s, peak RSS MiB, stderr's last line)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read().strip().splitlines()
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        raise SystemExit(f"{' '.join(cmd[2:5])} failed (exit {code}): {err[-1:] if err else ''}")
    return round(wall, 1), round(usage.ru_maxrss / 1024, 1), err[-1] if err else ""


def run_network(name: str, board: str, images: int, work: Path) -> dict:
    """Both steps for one network in ``work``; a step whose result is already there (an earlier,
    interrupted run of the same --work) is not run again, and its time is not known."""
    from common.atomic import write_json
    from train.finn_examples import export_finn_example

    model = work / f"{name}.onnx"
    out = work / "out"
    bdir = out / f"{name}_{board}"
    times_file = bdir / "bench_times.json"
    times = json.loads(times_file.read_text()) if times_file.is_file() else {}
    v = json.loads((bdir / "verify_rtl.json").read_text()) if (bdir / "verify_rtl.json").is_file() else {}
    if v.get("images") != images:
        export_finn_example(name, model, "totensor")
        times = {"verify": child([sys.executable, "-m", "hw", "verify", "--board", board, "--model", str(model),
                                  "--out", str(out), "--images", str(images), "--processes", "1"])[:2]}
        write_json(times_file, times)
        v = json.loads((bdir / "verify_rtl.json").read_text())
    rep = json.loads((bdir / "report.json").read_text())
    if "totals" not in rep.get("synthesis", {}):
        times["build"] = child([sys.executable, "-m", "flows", "build", "--board", board, "--model", str(model),
                                "--out", str(out), "--synth-jobs", "1"], ok=(0, 3))[:2]
        write_json(times_file, times)
        rep = json.loads((bdir / "report.json").read_text())
    (verify_s, verify_mib), (build_s, build_mib) = (times.get(k, (None, None)) for k in ("verify", "build"))
    syn = rep["synthesis"]
    kept = json.loads((bdir / "project_rtl.json").read_text())
    return {
        "network": name, "passed": v["passed"], "images": v["images"],
        "labels_equal": v["labels_equal_qonnx"], "integers_equal": v["scores_equal_qonnx"],
        "cycles_per_image": v["cycles_per_image"], "fps": v["fps_at_board_clock"], "clock_mhz": v["clock_mhz"],
        "search_estimate": {"fps": rep["summary"]["estimated_fps"], "LUT": rep["summary"]["totals"]["LUT"],
                            "BRAM36": rep["summary"]["totals"]["BRAM36"]},
        "yosys": {k: syn["totals"][k] for k in ("LUT", "FF", "BRAM36", "DSP")} if "totals" in syn else None,
        "yosys_percent": syn.get("used_pct") if "totals" in syn else None,
        "layers": sum(la.get("model") != "fifo" for la in rep["layers"]),
        "hls_layers": sorted(kept.get("kept_hls", {})),
        "input": rep["host"]["input"]["summary"], "output": rep["host"]["output"]["summary"],
        "verify": {"wall_s": verify_s, "peak_rss_mib": verify_mib},
        "build": {"wall_s": build_s, "peak_rss_mib": build_mib},
        "finn_published": FINN_PUBLISHED.get(name),
    }


def _time(step: dict) -> str:
    if step["wall_s"] is None:
        return "- (resumed)"
    return f"{step['wall_s']:.0f} s / {step['peak_rss_mib']:.0f} MiB"


def _pct(r: dict, k: str) -> str:
    p = (r.get("yosys_percent") or {}).get(k)
    return f" ({p:.1f}%)" if p is not None else ""


def markdown(res: dict) -> str:
    lines = ["# FINN's own networks through this flow", "",
             f"Command: `python bench/bnn_pynq.py --board {res['board']} --images {res['images']} --networks "
             f"{' '.join(r['network'] for r in res['networks'])}` ({res['machine']}, {res['cpus']} CPUs, "
             f"load average {res['load_average']})", "",
             "FINN's ToTensor recipe (UINT8 pixels in), untrained weights (Brevitas' init, BatchNorm randomized): "
             "the hardware, not the accuracy. Cycles per image: the whole accelerator in Verilator, no gaps; "
             "exactness: labels and output integers against the QONNX model on random images. LUT / FF / BRAM36: "
             "yosys `synth_xilinx` of every RTL module and the sized FIFOs, before place and route.", "",
             f"| network | exact vs QONNX | cycles/image | FPS at {res['clock_mhz']:g} MHz | LUT | FF | BRAM36 | "
             "HLS layers left | verify wall / peak | build wall / peak |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in res["networks"]:
        y = r["yosys"] or {}
        lines.append(
            f"| {r['network']} | {'PASSED' if r['passed'] else 'FAILED'} {r['integers_equal']}/{r['images']} | "
            f"{r['cycles_per_image']:,} | {r['fps']:,.0f} | {y.get('LUT', 0):,}{_pct(r, 'LUT')} | {y.get('FF', 0):,} | "
            f"{y.get('BRAM36', 0):g}{_pct(r, 'BRAM36')} | {', '.join(r['hls_layers']) or 'none'} | "
            f"{_time(r['verify'])} | {_time(r['build'])} |")
    if any(r[k]["wall_s"] is None for r in res["networks"] for k in ("verify", "build")):
        lines += ["", "- (resumed): that step's result comes from an earlier, interrupted run with the same `--work` "
                  "(the same code); its wall time and memory were not measured."]
    pub = [r for r in res["networks"] if r["finn_published"]]
    if pub:
        lines += ["", "FINN's published figures for the same networks on the same chip (BNN-PYNQ on a Pynq-Z1, "
                  "xc7z020, 100 MHz, after Vivado, throughput measured on the board):", "",
                  "| network | FPS (FINN) | FPS (this flow, simulated) | LUT (FINN, placed) | LUT (this flow, yosys) | "
                  "BRAM36 (FINN) | BRAM36 (this flow, yosys) |", "|---|---:|---:|---:|---:|---:|---:|"]
        for r in pub:
            f, y = r["finn_published"], r["yosys"] or {}
            lines.append(f"| {r['network']} | {f['fps']:,} | {r['fps']:,.0f} | {f['LUT']:,} | {y.get('LUT', 0):,} | "
                         f"{f['BRAM36']} | {y.get('BRAM36', 0):g} |")
    lines += ["", "Host side (the report's `host` section):", ""]
    lines += [f"- {r['network']}: input: {r['input']}; output: {r['output']}" for r in res["networks"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    from common.atomic import write_json, write_text
    from train.finn_examples import NETWORKS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--networks", nargs="+", default=list(DEFAULT_NETWORKS), choices=NETWORKS)
    p.add_argument("--board", default="pynq-z2")
    p.add_argument("--images", type=int, default=20)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "bnn_pynq")
    p.add_argument("--work", type=Path, help="keep the builds here; a rerun with the same --work resumes "
                   "(default: a temporary folder, removed at the end)")
    args = p.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bnn_pynq_") as tmp:
        work = args.work or Path(tmp)
        for name in args.networks:
            print(f"[bench] {name} ...", flush=True)
            rows.append(run_network(name, args.board, args.images, work))
            res = {"board": args.board, "images": args.images, "clock_mhz": rows[0]["clock_mhz"], "networks": rows,
                   "machine": platform.machine(), "cpus": os.cpu_count(),
                   "load_average": ", ".join(f"{x:.1f}" for x in os.getloadavg())}
            write_json(args.out.with_suffix(".json"), res)  # after every network: nothing lost
            write_text(args.out.with_suffix(".md"), markdown(res))
    print(markdown(res), end="")
    return 0 if all(r["passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
