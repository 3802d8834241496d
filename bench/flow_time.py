"""Wall time and peak memory of the vendor-free part of the FINN build, on this machine.

Runs `python -m flows build --vendor-free` in a child process (so its peak RSS is its own):
lowering, folding search, FINN's estimate reports, code generation and the report; no
Vivado/Vitis step. Per-stage times come from the build's report.json.

    python bench/flow_time.py [--model train/pretrained/fmnist_wrn8_3_w1a2.onnx] [--board pynq-z2]

Prints a table and writes bench/results/flow_time.{json,md}.
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

from bench.paths import repo_relative  # noqa: E402
from train import DEFAULT_MODEL  # noqa: E402


def timed_build(model: Path, board: str, out: Path, threads: int) -> dict:
    """Run the vendor-free build in a child; wall time, its peak RSS and its report."""
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads))
    cmd = [sys.executable, "-m", "flows", "build", "--vendor-free", "--board", board, "--model", str(model),
           "--out", str(out)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    stdout, stderr = proc.stdout.read(), proc.stderr.read()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"build failed (exit {proc.returncode}): {stderr.strip().splitlines()[-1:]}")
    build_dir = out / f"{model.stem}_{board}"
    report = json.loads((build_dir / "report.json").read_text())
    return {"wall_s": round(wall, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),  # Linux: KiB
            "stages_s": report["timings_s"], "layers": sum(la.get("model") != "fifo" for la in report["layers"]),
            "estimated_fps": report["summary"]["estimated_fps"],
            # the build prints its folders: committed results name no path of this machine
            "stdout": stdout.strip().replace(str(out), "<build folder>").replace(f"{ROOT}/", "")}


def markdown(r: dict) -> str:
    stages = ", ".join(f"{k} {v:.1f} s" for k, v in r["stages_s"].items())
    return "\n".join([
        "# Vendor-free FINN build: time and memory", "",
        f"Command: `python bench/flow_time.py --model {r['model']} --board {r['board']}` "
        f"({r['machine']}, {r['cpus']} CPUs, load average {r['load_average']})", "",
        "| model | board | layers | wall time | peak RSS | est. FPS |", "|---|---|---:|---:|---:|---:|",
        f"| {Path(r['model']).name} | {r['board']} | {r['layers']} | {r['wall_s']:.1f} s | "
        f"{r['peak_rss_mib']:.0f} MiB | {r['estimated_fps']:,.0f} |", "",
        f"Stages (inside the build, after imports): {stages}.", ""])


def main() -> int:
    from common.atomic import write_json, write_text

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--board", default="pynq-z2")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "flow_time")
    args = p.parse_args()
    if not args.model.is_file():
        print(f"error: model not found: {args.model}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="flow_time_") as tmp:
        r = timed_build(args.model.resolve(), args.board, Path(tmp), args.threads)
    r.update(model=repo_relative(args.model), board=args.board, machine=platform.machine(), cpus=os.cpu_count(),
             load_average=", ".join(f"{x:.1f}" for x in os.getloadavg()))
    write_json(args.out.with_suffix(".json"), r)
    write_text(args.out.with_suffix(".md"), markdown(r))
    print(markdown(r), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
