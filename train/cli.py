"""`python -m train`: train a config, resume a run, or train its full-precision twin."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from common.errors import UserError
from train.config import DEFAULT_CONFIG, load_config


def parse_args(argv=None, prog: str = "python -m train") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__)
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="experiment YAML (default: %(default)s)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config entries, e.g. train.epochs=3 model.width=4")
    p.add_argument("--full-precision", action="store_true",
                   help="train the same network with full-precision weights and activations (the baseline)")
    p.add_argument("--run-dir", type=Path, help="default: runs/<config name>")
    p.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its last checkpoint")
    p.add_argument("--extend-to", type=int, metavar="EPOCHS",
                   help="with --resume: train the run on to this epoch (e.g. 31 -> 63, the next SGDR restart); "
                        "the learning rate and data order depend on the epoch only, so this equals a run "
                        "started with train.epochs=EPOCHS")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--no-export", action="store_true", help="skip the QONNX export at the end")
    return p.parse_args(argv)


def main(argv=None, prog: str = "python -m train") -> int:
    args = parse_args(argv, prog)
    try:
        if args.extend_to is not None and not args.resume:
            raise UserError("--extend-to continues an existing run: pass --resume too")
        cfg = load_config(args.config, args.overrides, args.full_precision)
        from train.trainer import fit  # heavy imports after the config is known to be good

        run_dir = args.run_dir or Path("runs") / cfg["name"]
        final = fit(cfg, run_dir, resume=args.resume, progress=not args.no_progress,
                    export=False if args.no_export else None, extend_to=args.extend_to)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if os.environ.get("RANK", "0") == "0":  # under torchrun: one line, from rank 0
        print(f"[train] done: test top-1 {100 * final['test_top1']:.2f}% -> {run_dir}/final.json")
    return 0
