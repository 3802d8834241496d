"""Command line of the FINN flow (`wrn1bit build | verify | verify-flow`, or `python -m flows`).

  build      --board pynq-z2 [--model X.onnx] [--out build] [--folding f.json] [--margin 0.2]
             [--no-synth] [--synth-jobs N]
  verify     (wrn1bit verify-flow) the lowered graphs stage by stage vs the QONNX model
             --board pynq-z2 [--model X.onnx] [--checkpoint X.pt] [--images 100|all]
             [--data fashion_mnist|mnist|cifar10|svhn | --inputs X.npy] [--out build]
  verify-hw  (wrn1bit verify, python -m hw verify) the whole accelerator in Verilator (--sim rtl)
             or cppsim (--sim cppsim), same input options, [--processes N]; --netlist [--layers NAME...]:
             every layer as RTL and as its yosys netlist on the same images (default 3); --netlist
             --whole: the whole accelerator as one flattened netlist beside its RTL (default 20 images)

Exit status: 0 done; 2 bad input (one `error: ...` line; a design too large for the board also
prints the per-layer table); 3 the vendor-free part is done and the next step needs
Vivado / Vitis HLS; 1 the exactness check failed (verify, verify-hw).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.boards import DEFAULT_MARGIN
from train import DEFAULT_MODEL

EXIT_BAD_INPUT, EXIT_NEEDS_VENDOR_TOOLS = 2, 3


def _model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--board", default="pynq-z2", help="a board under boards/ (default pynq-z2)")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help=f"QONNX file (default {DEFAULT_MODEL})")
    p.add_argument("--out", type=Path, default=Path("build"), help="builds go to OUT/<model stem>_<board>/")


def build_parser(prog: str) -> argparse.ArgumentParser:
    b = argparse.ArgumentParser(prog=prog, description="QONNX model -> FINN accelerator for a board (FINN's builder)")
    _model_args(b)
    b.add_argument("--folding", type=Path, help="FINN folding config JSON (ApplyConfig format) instead of the search")
    b.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help=f"keep this share of every resource free (default {DEFAULT_MARGIN})")
    b.add_argument("--mvau-wwidth-max", type=int, default=36,
                   help="SetFolding's cap on an MVAU's weight bits per PE (SIMD x weight bits; FINN's default 36)")
    b.add_argument("--hw-backend", choices=("rtl", "hls"), default="rtl",
                   help="rtl: this project's RTL for FINN's HLS-only layers (default); hls: keep FINN's HLS")
    b.add_argument("--vendor-free", action="store_true",
                   help="stop after the part that needs no Vivado/Vitis (exit 0), even where they are installed")
    b.add_argument("--no-synth", action="store_true",
                   help="skip the yosys resource estimate of the generated RTL (minutes on a first build)")
    b.add_argument("--synth-jobs", type=int, default=min(4, os.cpu_count() or 1),
                   help="yosys processes at a time for the estimate (default: CPUs, at most 4)")
    return b


def verify_flow_parser(prog: str) -> argparse.ArgumentParser:
    v = argparse.ArgumentParser(prog=prog, description="every lowered graph of the build, stage by stage, "
                                "vs the QONNX model (and Brevitas): integer exactness")
    _model_args(v)
    add_input_args(v, default_images=100)
    return v


def verify_hw_parser(prog: str) -> argparse.ArgumentParser:
    v = argparse.ArgumentParser(prog=prog, description="the accelerator of a QONNX model simulated (Verilator or "
                                "cppsim) and compared with the model")
    _model_args(v)
    add_input_args(v, default_images=None)
    v.add_argument("--sim", choices=("rtl", "cppsim"), default="rtl",
                   help="rtl: this project's RTL accelerator stitched in Verilator; cppsim: the --hw-backend hls "
                        "build, FINN's HLS layers in cppsim (needs finn-hlslib in FINN_DEPS), layer by layer")
    v.add_argument("--gap", type=float, default=0.1, help="probability of an input gap per cycle")
    v.add_argument("--stall", type=float, default=0.1, help="probability of output back-pressure per cycle")
    v.add_argument("--processes", type=int, default=min(2, os.cpu_count() or 1),
                   help="simulator processes for the images after the first 100 (--sim rtl; default: 2 or the CPUs)")
    v.add_argument("--margin", type=float, default=DEFAULT_MARGIN,
                   help=f"the build's folding margin, as `build --margin` (--sim rtl; default {DEFAULT_MARGIN})")
    v.add_argument("--netlist", action="store_true",
                   help="every layer as RTL and as its yosys netlist (Xilinx primitive models) on the same "
                        "images (default 3), each against FINN's python; report verify_netlist.{json,md}")
    v.add_argument("--layers", nargs="+", metavar="NAME", help="--netlist: only these layers")
    v.add_argument("--whole", action="store_true",
                   help="--netlist: the whole stitched accelerator (FIFOs as `verify` sized them) synthesized as "
                        "one flattened netlist and simulated beside its RTL (default 20 images): labels, class "
                        "scores and cycles per image vs the RTL and the QONNX model; with --layers also those "
                        "layers one by one")
    return v


def images_arg(text: str):
    """--images: a count, or 'all' (the whole test set)."""
    if text == "all":
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of images or 'all', got {text!r}") from None


def add_input_args(p: argparse.ArgumentParser, default_images) -> None:
    """The options that say what a verification runs on (flows.verify.prepare_verification)."""
    from flows.verify import DATA_SETS

    p.add_argument("--checkpoint", type=Path,
                   help="this project's Brevitas checkpoint, compared too (default: the model path with .pt, if any)")
    p.add_argument("--images", type=images_arg, default=default_images,
                   help=f"inputs to compare on, or 'all' (default {default_images})")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--data", choices=DATA_SETS, help="test images of this data set (default: the checkpoint's)")
    src.add_argument("--inputs", type=Path, help="N x C x H x W floats (.npy) in the model's input range")


def run_build(args) -> int:
    from flows.build import build

    report = build(args.model, args.board, args.out, args.folding, args.margin,
                   vendor_free=args.vendor_free, mvau_wwidth_max=args.mvau_wwidth_max,
                   hw_backend=args.hw_backend, synth=not args.no_synth, synth_jobs=args.synth_jobs)
    s = report["summary"]
    print(f"[flows] {report['build_dir']}: est. {s['estimated_fps']:,.0f} FPS; report.md written")
    return 0


def run_verify_flow(args) -> int:
    from flows.verify import verify_flow

    result = verify_flow(args.model, args.board, args.out, args.checkpoint, args.images, args.data, args.inputs)
    print(f"[flows] exactness vs the QONNX model {'PASSED' if result['passed'] else 'FAILED'} on {result['images']} "
          f"inputs ({result['inputs']}): "
          + "; ".join(f"{k} {r['integers_equal']}/{r['images']}" for k, r in result["stages"].items()))
    return 0 if result["passed"] else 1


def run_verify_hw(args) -> int:
    from flows.finn_env import import_finn

    import_finn(args.out / ".finn")
    images = args.images if args.images is not None else (10 if args.sim == "cppsim" else 100)
    if args.netlist:
        return run_verify_netlist(args)
    if args.whole:
        from common.errors import UserError

        raise UserError("--whole is an option of --netlist: wrn1bit verify --netlist --whole")
    if args.sim == "cppsim":
        from flows.verify_cppsim import verify_hls_accelerator

        r = verify_hls_accelerator(args.model, args.board, args.out, args.checkpoint, images,
                                   data=args.data, inputs=args.inputs)
    else:
        from flows.verify_rtl import verify_accelerator

        r = verify_accelerator(args.model, args.board, args.out, args.checkpoint, images, args.gap, args.stall,
                               data=args.data, inputs=args.inputs, processes=args.processes, margin=args.margin)
    what = "HLS accelerator (cppsim + Verilator)" if args.sim == "cppsim" else "RTL accelerator"
    speed = (f"{r['timings']['seconds_per_image']:.2f} s/image" if args.sim == "cppsim" else
             f"{r['cycles_per_image']:,} cycles/image, {r['fps_at_board_clock']:,.0f} FPS at {r['clock_mhz']:.0f} MHz")
    print(f"[hw] {what} {'PASSED' if r['passed'] else 'FAILED'} on {summary_line(r)}; {speed}")
    return 0 if r["passed"] else 1


def run_verify_netlist(args) -> int:
    from common.errors import UserError
    from flows.verify_netlist import verify_netlist_layers

    if args.sim != "rtl":
        raise UserError("--netlist simulates the RTL layers' netlists: use it with --sim rtl")
    r = verify_netlist_layers(args.model, args.board, args.out, args.checkpoint,
                              args.images if args.images is not None else (20 if args.whole else 3), args.gap,
                              args.stall, data=args.data, inputs=args.inputs, margin=args.margin, layers=args.layers,
                              whole=args.whole)
    if "whole" in r:
        w = r["whole"]
        n, sim = w["images"], w["sim"]
        print(f"[hw] whole-accelerator netlist {'PASSED' if w['passed'] else 'FAILED'} on {n} inputs: labels/integers "
              f"{w['labels_equal_rtl']}/{w['scores_equal_rtl']} of {n} vs RTL, {w['netlist_labels_equal_qonnx']}/"
              f"{w['netlist_scores_equal_qonnx']} of {n} vs QONNX; cycles/image {sim['netlist']['cycles_per_image']:,} "
              f"(RTL {sim['rtl']['cycles_per_image']:,}); {w['seconds']:.0f} s; report {r['report']}")
    if "layers" in r:
        rows = [row for row in r["layers"] if "skipped" not in row]
        ok = sum(row["passed"] for row in rows)
        print(f"[hw] netlists {'PASSED' if all(row['passed'] for row in rows) and rows else 'FAILED'}: {ok}/{len(rows)} "
              f"layers RTL == netlist == FINN python on {r['images']} images, same output cycles; {r['seconds']:.0f} s; "
              f"report {r['report']}")
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


# the `python -m flows` subcommands: parser, runner
COMMANDS = {"build": (build_parser, run_build), "verify": (verify_flow_parser, run_verify_flow),
            "verify-hw": (verify_hw_parser, run_verify_hw)}


def run_command(name: str, argv, prog: str) -> int:
    """One command, its errors as one line and an exit status."""
    from common.errors import UserError
    from flows.build import VendorStepsNeeded
    from flows.graph import LoweringError, lowering_message
    from hw.sim.verilator import BuildError, Stall, VerilatorMissing

    make_parser, runner = COMMANDS[name]
    args = make_parser(prog).parse_args(argv)
    try:
        return runner(args)
    except (UserError, BuildError, Stall, VerilatorMissing) as e:  # one line, no traceback
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except LoweringError as e:  # the same line from build, verify and verify-hw
        print(f"error: {lowering_message(args.model, e)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except VendorStepsNeeded as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NEEDS_VENDOR_TOOLS


def main_build(argv=None, prog: str = "python -m flows build") -> int:
    return run_command("build", argv, prog)


def main_verify_flow(argv=None, prog: str = "python -m flows verify") -> int:
    return run_command("verify", argv, prog)


def main_verify_hw(argv=None, prog: str = "python -m hw verify") -> int:
    return run_command("verify-hw", argv, prog)


def main(argv=None) -> int:
    """`python -m flows build | verify | verify-hw [options]`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:
        print(__doc__, file=sys.stderr)
        return EXIT_BAD_INPUT
    return run_command(argv[0], argv[1:], f"python -m flows {argv[0]}")
