"""`python -m hw verify`: the whole accelerator in Verilator (``--sim rtl``, this project's RTL)
or FINN's HLS layers in cppsim with the RTL-only layers in Verilator (``--sim cppsim``), of any
QONNX model the flow builds, vs the QONNX model itself (run by qonnx), FINN's python execution and,
where this project's checkpoint sits beside the model, Brevitas (docs/verification.md);
`python -m hw.synth` estimates resources with yosys."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from flows.__main__ import add_input_args
from train import DEFAULT_MODEL


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="simulate the accelerator of a QONNX model and compare it with the model")
    v.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"QONNX file (default {DEFAULT_MODEL})")
    v.add_argument("--board", default="pynq-z2")
    v.add_argument("--out", type=Path, default=Path("build"))
    add_input_args(v, default_images=None)
    v.add_argument("--sim", choices=("rtl", "cppsim"), default="rtl",
                   help="rtl: this project's RTL accelerator stitched in Verilator; cppsim: the --hw-backend hls "
                        "build, FINN's HLS layers in cppsim (needs finn-hlslib in FINN_DEPS), layer by layer")
    v.add_argument("--gap", type=float, default=0.1, help="probability of an input gap per cycle")
    v.add_argument("--stall", type=float, default=0.1, help="probability of output back-pressure per cycle")
    v.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                   help="simulator processes for the images after the first 100 (--sim rtl; default: 2 or the CPUs)")
    args = p.parse_args(argv)

    from common.errors import UserError
    from flows.finn_env import import_finn
    from flows.streamline import LoweringError, lowering_message
    from hw.sim.verilator import BuildError, Stall, VerilatorMissing

    try:
        import_finn(args.out / ".finn")
        images = args.images if args.images is not None else (10 if args.sim == "cppsim" else 100)
        if args.sim == "cppsim":
            from hw.verify_cppsim import verify_hls_accelerator

            r = verify_hls_accelerator(args.model, args.board, args.out, args.checkpoint, images,
                                       data=args.data, inputs=args.inputs)
        else:
            from hw.verify import verify_accelerator

            r = verify_accelerator(args.model, args.board, args.out, args.checkpoint, images, args.gap, args.stall,
                                   data=args.data, inputs=args.inputs, processes=args.processes)
    except (UserError, BuildError, Stall, VerilatorMissing) as e:  # one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    except LoweringError as e:  # the same line as `python -m flows build`
        print(f"error: {lowering_message(args.model, e)}", file=sys.stderr)
        return 2
    what = "HLS accelerator (cppsim + Verilator)" if args.sim == "cppsim" else "RTL accelerator"
    speed = (f"{r['timings']['seconds_per_image']:.2f} s/image" if args.sim == "cppsim" else
             f"{r['cycles_per_image']:,} cycles/image, {r['fps_at_board_clock']:,.0f} FPS at {r['clock_mhz']:.0f} MHz")
    print(f"[hw] {what} {'PASSED' if r['passed'] else 'FAILED'} on {summary_line(r)}; {speed}")
    return 0 if r["passed"] else 1


def summary_line(r: dict) -> str:
    """Images, and labels / output integers equal to each reference, in one line."""
    n, n_py = r["images"], r["python_images"]
    parts = [f"{n} inputs ({r['inputs']}): labels/integers {r['labels_equal_qonnx']}/{r['scores_equal_qonnx']} of {n} "
             f"vs QONNX, {r['labels_equal_python']}/{r['scores_equal_python']} of {n_py} vs FINN python"]
    if "labels_equal_brevitas" in r:
        parts.append(f"{r['labels_equal_brevitas']}/{r['scores_equal_brevitas']} of {n} vs Brevitas")
    if "accuracy" in r:
        parts.append(f"top-1 {100 * r['accuracy']['hardware']:.2f}% (hardware) / {100 * r['accuracy']['qonnx']:.2f}% "
                     "(QONNX)")
    return ", ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
