"""The whole test set through the whole RTL accelerator, in Verilator: wall time and result.

    python bench/verify_all.py [--model train/pretrained/fmnist_wrn8_3_w1a2.onnx] [--processes 2]

What `make verify VERIFY_IMAGES=all` runs (flows.verify_rtl.verify_accelerator with images="all"): the
vendor-free build, FIFO sizing, the first 100 images with input gaps / back-pressure and every
stream monitored, then every other test image without gaps in --processes simulator processes;
labels and output integers of every image against the QONNX model (and Brevitas where the
checkpoint is there), top-1 accuracy from the simulated hardware. Writes
bench/results/verify_all.{json,md}; the build goes to a temporary folder.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.atomic import write_json, write_text  # noqa: E402
from train import DEFAULT_MODEL  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL)
    p.add_argument("--processes", type=int, default=2)
    args = p.parse_args(argv)
    from flows.finn_env import import_finn
    from flows.verify_rtl import verify_accelerator

    with tempfile.TemporaryDirectory() as tmp:
        import_finn(Path(tmp) / ".finn")
        t0 = time.perf_counter()
        r = verify_accelerator(args.model, "pynq-z2", Path(tmp), images="all", processes=args.processes)
        wall = time.perf_counter() - t0
    n, t = r["images"], r["timings"]
    keys = ("images", "passed", "labels_equal_qonnx", "scores_equal_qonnx", "labels_equal_brevitas",
            "scores_equal_brevitas", "labels_equal_python", "scores_equal_python", "python_images", "gap_images",
            "processes", "accuracy", "cycles_per_image", "inputs", "reference")
    result = {"model": args.model.name, "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
              "command": f"python bench/verify_all.py --processes {args.processes}", "wall_s": round(wall, 1),
              **{k: r[k] for k in keys if k in r}, "timings": t}
    acc = r.get("accuracy", {})
    lines = [f"# The whole test set through the RTL accelerator ({args.model.name}, pynq-z2, Verilator)", "",
             f"`{result['command']}` on {result['machine']}: **{'PASSED' if r['passed'] else 'FAILED'}**, "
             f"{wall / 60:.1f} min wall.", "",
             "| | |", "|---|---|",
             f"| images | {n:,} ({r['inputs']}) |",
             f"| labels / output integers equal to the QONNX model | {r['labels_equal_qonnx']:,} / "
             f"{r['scores_equal_qonnx']:,} |"]
    if "labels_equal_brevitas" in r:
        lines.append(f"| labels / output integers equal to Brevitas | {r['labels_equal_brevitas']:,} / "
                     f"{r['scores_equal_brevitas']:,} |")
    lines += [f"| ... equal to FINN's python execution (first {r['python_images']}) | {r['labels_equal_python']} / "
              f"{r['scores_equal_python']} |"]
    if acc:
        lines.append(f"| top-1 accuracy: simulated hardware / QONNX model | {100 * acc['hardware']:.2f}% / "
                     f"{100 * acc['qonnx']:.2f}% |")
    lines += [f"| first {r['gap_images']} images | 10% input gaps, 10% back-pressure, every stream monitored "
              f"({t['sim_with_gaps_s']:.0f} s) |",
              f"| the other {n - r['gap_images']:,} | no gaps, {r['processes']} simulator processes, "
              f"{t.get('sim_rest_cycles', 0):,} cycles in {t.get('sim_rest_s', 0):.0f} s "
              f"({t.get('sim_rest_cycles_per_s', 0):,} cycles/s in all) |",
              f"| cycles per image | {r['cycles_per_image']:,} |", ""]
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "verify_all.json", result)
    write_text(RESULTS / "verify_all.md", "\n".join(lines))
    return 0 if r["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
