"""`python -m train.bwnh`: binarize a full-precision WRN checkpoint with BWNH (Hu et al. 2018),
then fine-tune it as the 1-bit model of --config and export it.

Writes to --run-dir: bwnh_report.{json,md} (per-layer reconstruction error of BWNH and of
sign(W)*mean|W| on the same inputs, test top-1 of both right after binarization, and the
fine-tuned result), bwnh_init.pt (per conv: B as int8, the scales a, and the state dict with
weights B*a), then the trainer's run files (last.pt, metrics.jsonl, final.json, model.onnx and
its export check). Fine-tuning uses the config's train section: set a few epochs and the
learning rate, e.g. --set train.epochs=2 train.lr=0.01.

Fine-tuning keeps both halves of W ~= B A: a config whose weight quantizer has no per-channel
scale (the default's he_const, or sign) is switched to bwn_learned, whose scale a_c starts at
mean |w_c| = A_c of the weights B * A, so the 1-bit model starts exactly at BWNH's B A.
--drop-scales keeps the config's quantizer instead (BWNH's bits B only).
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

from common.atomic import torch_save
from common.errors import UserError
from train.config import DEFAULT_CONFIG, load_config


def parse_args(argv=None, prog: str = "python -m train.bwnh") -> argparse.Namespace:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--from", dest="checkpoint", type=Path, required=True,
                   help="full-precision checkpoint (python -m train --full-precision)")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                   help="the 1-bit model to fine-tune and its training (default: %(default)s)")
    p.add_argument("--set", dest="overrides", nargs="*", default=[], metavar="KEY=VALUE",
                   help="override config entries")
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--images", type=int, default=500, help="training images for X and BatchNorm (default: %(default)s)")
    p.add_argument("--inputs", choices=("binarized", "full_precision"), default="binarized",
                   help="each layer's X from the binarized layers below (the paper) or from the float network")
    p.add_argument("--test-images", type=int, default=10000, help="test images for top-1 (default: all)")
    p.add_argument("--no-finetune", action="store_true", help="binarize and report only")
    p.add_argument("--drop-scales", action="store_true",
                   help="fine-tune with the config's weight quantizer even without per-channel scales "
                        "(keeps BWNH's bits B, drops its scales A)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars while fine-tuning")
    return p.parse_args(argv)


# Weight quantizers that keep a per-channel scale (issue 5, item 1); the others keep only B.
PER_CHANNEL_SCALE = ("bwn", "bwn_learned")


def _top1(model, ds, n: int, calib: torch.Tensor) -> dict:
    from train.precise_bn import reestimate_batchnorm
    from train.trainer import evaluate

    fp_bn = evaluate(model, ds.test_x[:n], ds.test_y[:n], 1000, "cpu")[1]
    model = reestimate_batchnorm(copy.deepcopy(model), calib)
    return {"fp_bn": fp_bn, "reestimated_bn": evaluate(model, ds.test_x[:n], ds.test_y[:n], 1000, "cpu")[1]}


def run(args: argparse.Namespace) -> dict:
    cfg = load_config(args.config, args.overrides)
    method = cfg["model"]["weight_quant"]
    if not args.no_finetune and method not in PER_CHANNEL_SCALE:
        if args.drop_scales:
            print(f"[bwnh] model.weight_quant {method} has no per-channel scale: fine-tuning keeps BWNH's "
                  f"bits B and drops its scales A (--drop-scales)", flush=True)
        else:
            print(f"[bwnh] model.weight_quant {method} -> bwn_learned: fine-tuning starts from BWNH's B and "
                  f"per-channel scales A (--drop-scales keeps {method})", flush=True)
            cfg["model"]["weight_quant"] = method = "bwn_learned"
    from train.bwnh.convert import bwnh_from_checkpoint, check_same_architecture, load_binary_init, load_full_precision
    from train.bwnh.layerwise import binarize_mean_abs
    from train.bwnh.report import write_report
    from train.data import load_dataset

    if cfg["train"].get("threads"):
        torch.set_num_threads(int(cfg["train"]["threads"]))
    ckpt, fp_model = load_full_precision(args.checkpoint)
    mc = ckpt["model_config"]
    if not args.no_finetune:
        if not cfg["model"]["binary_weights"]:
            raise UserError("the config's model has full-precision weights (model.binary_weights: false); "
                            "BWNH fine-tunes a 1-bit model")
        check_same_architecture(mc, cfg["model"], str(args.checkpoint))
        if (args.run_dir / "last.pt").exists():
            raise UserError(f"{args.run_dir} already holds a run; choose another --run-dir")
    ds = load_dataset(cfg["data"], cfg["seed"])
    if (ds.image_shape[0], ds.num_classes) != (mc["in_channels"], mc["num_classes"]):
        raise UserError(f"{args.checkpoint} was trained for {mc['in_channels']}-channel images and "
                        f"{mc['num_classes']} classes; {ds.name} has {ds.image_shape[0]} and {ds.num_classes}")
    if args.images < 1:
        raise UserError("--images must be >= 1")
    idx = torch.randperm(len(ds.train_y), generator=torch.Generator().manual_seed(cfg["seed"]))[:args.images]
    calib = ds.train_x[idx]
    t0 = time.time()
    init = bwnh_from_checkpoint(args.checkpoint, calib, args.inputs,
                                log=lambda s: print(f"[bwnh] {s}", flush=True))
    seconds = time.time() - t0
    bwnh_model = copy.deepcopy(fp_model)
    bwnh_model.load_state_dict(init.state_dict)
    n = min(args.test_images, len(ds.test_y))
    report = {
        "checkpoint": str(args.checkpoint), "dataset": ds.name, "calibration_images": len(calib),
        "inputs": args.inputs, "test_images": n, "seconds": seconds,
        "layers": [r.summary() for r in init.results],
        "test_top1": {"full_precision": _top1(fp_model, ds, n, calib),
                      "sign_mean": _top1(binarize_mean_abs(copy.deepcopy(fp_model)), ds, n, calib),
                      "bwnh": _top1(bwnh_model, ds, n, calib)},
    }
    args.run_dir.mkdir(parents=True, exist_ok=True)
    torch_save(args.run_dir / "bwnh_init.pt", {"source": str(args.checkpoint), "model_config": mc,
                                              "layers": init.layers, "model": init.state_dict})
    write_report(args.run_dir, report)
    if args.no_finetune:
        return report
    from train.trainer import fit

    final = fit(cfg, args.run_dir, progress=not args.no_progress,
                init_model=lambda model: load_binary_init(model, init.state_dict))
    report["finetune"] = {"weight_quant": method, "epochs": final["epochs"], "test_top1": final["test_top1"],
                          "export_passed": final.get("export", {}).get("passed")}
    write_report(args.run_dir, report)
    return report


def main(argv=None, prog: str = "python -m train.bwnh") -> int:
    args = parse_args(argv, prog)
    try:
        report = run(args)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    t = report["test_top1"]
    print(f"[bwnh] test top-1 before fine-tuning: full precision {100 * t['full_precision']['fp_bn']:.2f}%, "
          f"sign*mean|W| {100 * t['sign_mean']['fp_bn']:.2f}%, BWNH {100 * t['bwnh']['fp_bn']:.2f}% "
          f"-> {args.run_dir}/bwnh_report.md")
    if "finetune" in report:
        f = report["finetune"]
        print(f"[bwnh] after fine-tuning: test top-1 {100 * f['test_top1']:.2f}%, export check "
              f"{'passed' if f['export_passed'] else 'not passed' if f['export_passed'] is False else 'not run'}")
        if f["export_passed"] is False:
            return 1
    return 0
