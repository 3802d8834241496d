"""The command line of one module's estimate: ``python -m hw.synth <top> <files...> [--board pynq-z2]``.

Here rather than in __main__.py so that the package can re-export ``main`` without importing
``hw.synth.__main__`` (runpy warns when ``python -m`` finds that module already imported).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from common.boards import load_board
from common.errors import UserError
from hw.synth.cells import FAMILIES, family_for_part
from hw.synth.runner import synthesize


def main(argv: list[str] | None = None, prog: str = "python -m hw.synth") -> int:
    ap = argparse.ArgumentParser(prog=prog, description="yosys resource estimate of one module")
    ap.add_argument("top", help="top module name")
    ap.add_argument("files", nargs="+", type=Path, help=".v/.sv sources, plus any data files they read")
    ap.add_argument("--family", choices=FAMILIES, help="synth_xilinx family (default: the board's, else xc7)")
    ap.add_argument("--board", help="also compare with this board's resources (boards/<name>.yaml)")
    ap.add_argument("--workdir", type=Path, help="work folder (default build/synth/<top>)")
    ap.add_argument("--reader", choices=("auto", "slang", "verilog"), default="auto")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--no-cache", action="store_true", help="run yosys even when an identical run is cached")
    args = ap.parse_args(argv)
    try:
        board = load_board(args.board) if args.board else None
        family = args.family or (family_for_part(board.part) if board else "xc7")
        r = synthesize(args.top, args.files, family, args.workdir, reader=args.reader, cache=not args.no_cache)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r.as_dict(), indent=2))
    else:
        print(f"{r.top} ({r.family}, read_{r.reader}, yosys {r.seconds:.1f} s{' (cached)' if r.cached else ''}, "
              f"log {r.log})")
        if r.fixes:
            print(f"  read with source fixes: {', '.join(r.fixes)}")
        for k in ("LUT", "LUT_logic", "LUTRAM", "SRL", "FF", "BRAM36", "DSP", "URAM", "CARRY", "MUXF7", "MUXF8"):
            used = ""
            if board and k in board.resources and board.resources[k] > 0:
                used = f"  {100.0 * getattr(r, k) / board.resources[k]:6.2f}% of {board.name}'s {board.resources[k]}"
            print(f"  {k:<10}{getattr(r, k):>10g}{used}")
        if r.other:
            print("  other     " + ", ".join(f"{c} x{k}" for c, k in r.other.items()))
    return 0
