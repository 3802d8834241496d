"""BinaryConnect vs stochastic rounding, each with SGD and Adam (Li, De et al. 2017), same budget.

Trains the config's model (default: the Fashion-MNIST WRN-8-2, 1-bit weights, 2-bit activations)
four times with the trainer itself (``train.trainer.fit``): BC or SR weight updates x SGD or
Adam, each on the same random subset of the training set for one epoch, i.e. one cosine period
of the config's SGDR schedule from the optimizer's lr down to 0, with the same seed (so the same
initial network, batches and augmentations). Records test top-1 on the whole test set, the
epoch's mean training loss (augmented batches, as trained), the loss and top-1 on 10,000 of the
training images without augmentation at the end, training images/s, and, with --export, the
QONNX export exactness check of each model.

    python bench/bc_vs_sr.py [--train-images 37500] [--sgd-lr 0.1] [--adam-lr 0.003] [--threads 1] [--export]

Prints a table and writes bench/results/bc_vs_sr.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

METHODS = [("binaryconnect", "sgd"), ("binaryconnect", "adam"),
           ("stochastic_rounding", "sgd"), ("stochastic_rounding", "adam")]
LABEL = {"binaryconnect": "BC", "stochastic_rounding": "SR", "sgd": "SGD", "adam": "Adam"}


def subset(ds, n: int, seed: int):
    """The first n images of a seeded permutation of the training set; the test set stays whole."""
    import torch

    if not 0 < n <= len(ds.train_y):
        raise SystemExit(f"--train-images must be 1..{len(ds.train_y)}")
    idx = torch.randperm(len(ds.train_y), generator=torch.Generator().manual_seed(seed))[:n]
    return dataclasses.replace(ds, train_x=ds.train_x[idx], train_y=ds.train_y[idx],
                               source=f"{ds.source} ({n} training images)")


def run_one(update: str, opt: str, ds, a, work: Path) -> dict:
    import torch

    from train.checkpoint import load_checkpoint, model_from_checkpoint
    from train.config import load_config
    from train.trainer import evaluate, fit

    lr = a.sgd_lr if opt == "sgd" else a.adam_lr
    cfg = load_config(a.config, [f"train.weight_update={update}", f"train.optimizer={opt}", f"train.lr={lr}",
                                 "train.epochs=1", f"train.threads={a.threads}", f"seed={a.seed}",
                                 f"export.check_images={a.export_images}"])
    run_dir = work / f"{update}_{opt}"
    t0 = time.time()
    final = fit(cfg, run_dir, progress=False, export=a.export, ds=ds)
    wall = time.time() - t0
    ckpt = load_checkpoint(run_dir / "last.pt")
    row = ckpt["history"][-1]
    model = model_from_checkpoint(ckpt)
    n = min(10_000, len(ds.train_y))
    clean_loss, clean_top1 = evaluate(model, ds.train_x[:n], ds.train_y[:n], 1000, torch.device("cpu"))
    out = {"method": f"{LABEL[update]} + {LABEL[opt]}", "weight_update": update, "optimizer": opt, "lr": lr,
           "test_top1": final["test_top1"], "test_loss": row["test_loss"],
           "train_loss_epoch_mean": row["train_loss"], "train_top1_epoch_mean": row["train_top1"],
           "train_loss_end": clean_loss, "train_top1_end": clean_top1,
           "train_images_per_s": row["train_images_per_s"], "train_seconds": row["seconds"],
           "wall_seconds": wall}
    if a.export:
        ex = final["export"]
        out["export_passed"] = ex["passed"]
        out["export_check"] = {k: ex.get(k) for k in ("images", "labels_equal", "integers_equal",
                                                      "conv_layers", "conv_layers_two_values")}
    return out


def markdown(result: dict) -> str:
    rows = result["rows"]
    export = "export" in result and result["export"]
    md = [f"# BinaryConnect vs stochastic rounding (Li & De 2017): {result['model']} on {result['dataset']}", "",
          f"{result['train_images']:,} training images, 1 epoch ({result['steps']} steps of batch "
          f"{result['batch_size']}), SGDR: one cosine period from the lr to 0, seed {result['seed']}, "
          f"{result['threads']} CPU thread(s) per run. Test top-1 on all {result['test_images']:,} test images; "
          "'train loss (epoch)' is the mean over the epoch's augmented batches, 'train loss / top-1 (end)' "
          f"is on {result['clean_train_images']:,} of the training images without augmentation after the run.", "",
          "| method | lr | test top-1 | train loss (epoch) | train loss (end) | train top-1 (end) | train img/s |"
          + (" export check |" if export else ""),
          "|---|---:|---:|---:|---:|---:|---:|" + ("---|" if export else "")]
    for r in rows:
        md.append(f"| {r['method']} | {r['lr']:g} | {100 * r['test_top1']:.2f}% | {r['train_loss_epoch_mean']:.4f} "
                  f"| {r['train_loss_end']:.4f} | {100 * r['train_top1_end']:.2f}% | {r['train_images_per_s']:.0f} |"
                  + (f" {'passed' if r['export_passed'] else 'FAILED'} |" if export else ""))
    md += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(md)


def main() -> int:
    from train.config import DEFAULT_CONFIG, load_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--train-images", type=int, default=37_500, help="subset size (37,500 = 300 steps of 125)")
    p.add_argument("--sgd-lr", type=float, default=0.1, help="McDonnell's SGD lr (the config's)")
    p.add_argument("--adam-lr", type=float, default=0.003)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", action="store_true", help="also run the QONNX export exactness check of each model")
    p.add_argument("--export-images", type=int, default=100)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "bc_vs_sr"))
    a = p.parse_args()
    from train.atomic import write_json, write_text
    from train.data import load_dataset

    cfg = load_config(a.config)
    ds = subset(load_dataset(cfg["data"], a.seed), a.train_images, a.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bc_vs_sr_") as tmp:
        for update, opt in METHODS:
            rows.append(run_one(update, opt, ds, a, Path(tmp)))
            r = rows[-1]
            print(f"{r['method']:>10}: test top-1 {100 * r['test_top1']:.2f}%, train loss "
                  f"{r['train_loss_epoch_mean']:.4f} (epoch) {r['train_loss_end']:.4f} (end), "
                  f"{r['train_images_per_s']:.0f} img/s"
                  + (f", export {'passed' if r['export_passed'] else 'FAILED'}" if a.export else ""), flush=True)
    bs = cfg["train"]["batch_size"]
    result = {
        "config": str(Path(a.config).resolve().relative_to(ROOT)) if Path(a.config).resolve().is_relative_to(ROOT)
        else a.config, "model": f"WRN-{cfg['model']['depth']}-{cfg['model']['width']}",
        "dataset": cfg["data"]["dataset"], "train_images": a.train_images, "test_images": len(ds.test_y),
        "clean_train_images": min(10_000, a.train_images), "batch_size": bs,
        "steps": (a.train_images + bs - 1) // bs, "seed": a.seed, "threads": a.threads,
        "export": a.export, "cpu": platform.processor() or platform.machine(), "rows": rows,
        "command": "python bench/bc_vs_sr.py " + " ".join(sys.argv[1:]),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result)
    write_text(out.with_suffix(".md"), markdown(result))
    print(f"-> {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
