"""`python -m hw verify`: the whole accelerator in Verilator (``--sim rtl``, this project's RTL)
or FINN's HLS layers in cppsim with the RTL-only layers in Verilator (``--sim cppsim``), vs
FINN's python execution and Brevitas; `python -m hw.synth` estimates resources with yosys."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from train import DEFAULT_MODEL


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m hw", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    v = sub.add_parser("verify", help="simulate the stitched accelerator on real test images")
    v.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"QONNX file (default {DEFAULT_MODEL})")
    v.add_argument("--board", default="pynq-z2")
    v.add_argument("--out", type=Path, default=Path("build"))
    v.add_argument("--checkpoint", type=Path, help="Brevitas checkpoint (default: the model path with .pt)")
    v.add_argument("--images", type=int, help="test images (default 100 with --sim rtl, 10 with --sim cppsim, "
                                               "which takes about 100 s per image of the default model)")
    v.add_argument("--sim", choices=("rtl", "cppsim"), default="rtl",
                   help="rtl: this project's RTL accelerator stitched in Verilator; cppsim: the --hw-backend hls "
                        "build, FINN's HLS layers in cppsim (needs finn-hlslib in FINN_DEPS), layer by layer")
    v.add_argument("--gap", type=float, default=0.1, help="probability of an input gap per cycle")
    v.add_argument("--stall", type=float, default=0.1, help="probability of output back-pressure per cycle")
    args = p.parse_args(argv)

    from flows.finn_env import import_finn
    from hw.sim.verilator import BuildError, Stall, VerilatorMissing
    from train.errors import UserError

    try:
        import_finn(args.out / ".finn")
        images = args.images if args.images is not None else (10 if args.sim == "cppsim" else 100)
        if args.sim == "cppsim":
            from hw.verify_cppsim import verify_hls_accelerator

            r = verify_hls_accelerator(args.model, args.board, args.out, args.checkpoint, images)
        else:
            from hw.verify import verify_accelerator

            r = verify_accelerator(args.model, args.board, args.out, args.checkpoint, images, args.gap, args.stall)
    except (UserError, BuildError, Stall, VerilatorMissing) as e:  # one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return 2
    n = r["images"]
    if args.sim == "cppsim":
        print(f"[hw] HLS accelerator (cppsim + Verilator) {'PASSED' if r['passed'] else 'FAILED'} on {n} images: "
              f"labels {r['labels_equal_python']}/{n} (python) {r['labels_equal_brevitas']}/{n} (Brevitas), scores "
              f"{r.get('scores_equal_python', '-')}/{n} {r.get('scores_equal_brevitas', '-')}/{n}; "
              f"{r['timings']['seconds_per_image']:.2f} s/image")
        return 0 if r["passed"] else 1
    print(f"[hw] RTL accelerator {'PASSED' if r['passed'] else 'FAILED'} on {n} images: labels "
          f"{r['labels_equal_python']}/{n} (python) {r['labels_equal_brevitas']}/{n} (Brevitas), scores "
          f"{r.get('scores_equal_python', '-')}/{n} {r.get('scores_equal_brevitas', '-')}/{n}; "
          f"{r['cycles_per_image']:,} cycles/image, {r['fps_at_board_clock']:,.0f} FPS at {r['clock_mhz']:.0f} MHz")
    return 0 if r["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
