"""`wrn1bit <command> [options]`: one console entry point for every stage of the pipe.

Each command hands its options to the stage's own command line, which stays usable as
`python -m ...` (the right-hand column); `wrn1bit <command> --help` shows its options.
"""

from __future__ import annotations

import importlib
import sys

# command: (module, its main function, the python -m form, what it does)
COMMANDS = {
    "train": ("train.cli", "main", "python -m train", "train a config (Brevitas), resume a run, or its full-precision twin"),
    "export": ("train.export", "main", "python -m train.export", "QONNX export of a checkpoint, checked exact"),
    "precise-bn": ("train.precise_bn", "main", "python -m train.precise_bn",
                   "a checkpoint's BatchNorm statistics recomputed over the training set"),
    "finn-example": ("train.finn_examples", "main", "python -m train.finn_examples",
                     "one of FINN's example networks (BNN-PYNQ CNV / LFC / SFC / TFC) exported to QONNX"),
    "bwnh": ("train.bwnh.cli", "main", "python -m train.bwnh", "binary weights by hashing (BWNH) from a checkpoint"),
    "build": ("flows.cli", "main_build", "python -m flows build",
              "QONNX model -> FINN dataflow accelerator for a board (exit 3: the rest needs Vivado/Vitis)"),
    "verify": ("flows.cli", "main_verify_hw", "python -m hw verify",
               "the whole accelerator in Verilator (--sim rtl) or cppsim (--sim cppsim) vs the QONNX model"),
    "verify-flow": ("flows.cli", "main_verify_flow", "python -m flows verify",
                    "every lowered graph of the build, stage by stage, vs the QONNX model"),
    "synth": ("hw.synth.cli", "main", "python -m hw.synth", "yosys resource estimate of one RTL module"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    rows = [f"  {name:<{width}}  {what}  ({form})" for name, (_, _, form, what) in COMMANDS.items()]
    return "usage: wrn1bit <command> [options]   (wrn1bit <command> --help for its options)\n\ncommands:\n" + \
        "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"error: unknown command '{name}' (commands: {', '.join(COMMANDS)})", file=sys.stderr)
        return 2
    module, function, _, _ = COMMANDS[name]
    entry = getattr(importlib.import_module(module), function)  # a stage's modules load only when it runs
    return entry(rest, prog=f"wrn1bit {name}")
