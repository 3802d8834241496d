"""Binary-weight training methods side by side, each trained by the trainer for the same budget.

The methods are data (bench/methods.yaml): overrides of an experiment config (default: the
Fashion-MNIST WRN-8-2 W1A2). Every row trains with ``train.trainer.fit`` for one epoch, i.e. one
cosine period of the SGDR schedule from the lr down to 0, on the same seeded subset of the
training set, with the same seed (same initial latent weights where the model is the same, same
batches and augmentations). Recorded: test top-1 on the whole test set, the epoch's mean training
loss (augmented batches, as trained), loss and top-1 on up to 10,000 training images without
augmentation at the end, training images/s, and with --export the QONNX export exactness check.

    python bench/methods.py [--group methods|bc_sr] [--train-images 37500] [--threads 1] [--export]

Prints a table and writes bench/results/<group>.{json,md}. `--group bc_sr` is Li & De's
BinaryConnect vs stochastic rounding comparison (SGD and Adam).
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from common.yamlfile import read_yaml  # noqa: E402  (after the path: bench/ runs as a script)

METHODS_FILE = ROOT / "bench" / "methods.yaml"
# The methods are compared on WRN-8-2 (the results in bench/results/ and README are on it).
METHODS_BASE_CONFIG = "train/configs/fmnist_wrn8_2_w1a2.yaml"


def load_methods(group: str) -> list[dict]:
    rows = [m for m in read_yaml(METHODS_FILE) if group in m["group"]]
    if not rows:
        raise SystemExit(f"no method in {METHODS_FILE.name} belongs to group '{group}'")
    return rows


def run_one(method: dict, ds, a, work: Path) -> dict:
    import torch

    from train.checkpoint import load_checkpoint, model_from_checkpoint
    from train.config import load_config
    from train.trainer import evaluate, fit

    overrides = list(method["set"]) + ["train.epochs=1", f"train.threads={a.threads}", f"seed={a.seed}",
                                       f"export.check_images={a.export_images}"]
    cfg = load_config(ROOT / method.get("config", a.config), overrides)
    run_dir = work / f"run{len(list(work.iterdir()))}"
    t0 = time.time()
    final = fit(cfg, run_dir, progress=False, export=a.export, ds=ds)
    wall = time.time() - t0
    ckpt = load_checkpoint(run_dir / "last.pt")
    row = ckpt["history"][-1]
    n = min(10_000, len(ds.train_y))
    clean_loss, clean_top1 = evaluate(model_from_checkpoint(ckpt), ds.train_x[:n], ds.train_y[:n], 1000,
                                      torch.device("cpu"))
    out = {"method": method["name"], "overrides": method["set"], "lr": cfg["train"]["lr"],
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
    export = result["export"]
    md = [f"# Binary-weight methods ({result['group']}): {result['model']} on {result['dataset']}", "",
          f"{result['train_images']:,} training images, 1 epoch ({result['steps']} steps of batch "
          f"{result['batch_size']}), SGDR: one cosine period from the lr to 0, seed {result['seed']}, "
          f"{result['threads']} CPU thread(s) per run. Test top-1 on all {result['test_images']:,} test images; "
          "'train loss (epoch)' is the mean over the epoch's augmented batches, 'train loss / top-1 (end)' "
          f"is on {result['clean_train_images']:,} of the training images without augmentation after the run.", "",
          "| method | lr | test top-1 | train loss (epoch) | train loss (end) | train top-1 (end) | train img/s |"
          + (" export check |" if export else ""),
          "|---|---:|---:|---:|---:|---:|---:|" + ("---|" if export else "")]
    for r in result["rows"]:
        md.append(f"| {r['method']} | {r['lr']:g} | {100 * r['test_top1']:.2f}% | {r['train_loss_epoch_mean']:.4f} "
                  f"| {r['train_loss_end']:.4f} | {100 * r['train_top1_end']:.2f}% | {r['train_images_per_s']:.0f} |"
                  + (f" {'passed' if r['export_passed'] else 'FAILED'} |" if export else ""))
    md += ["", f"Command: `{result['command']}`", ""]
    return "\n".join(md)


def main() -> int:
    from train.config import load_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--group", default="methods", help="rows of bench/methods.yaml to run (default: %(default)s)")
    p.add_argument("--config", default=METHODS_BASE_CONFIG, help="base experiment config (default: %(default)s)")
    p.add_argument("--train-images", type=int, default=37_500, help="subset size (37,500 = 300 steps of 125)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads per run")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--export", action="store_true", help="also run the QONNX export exactness check of each model")
    p.add_argument("--export-images", type=int, default=100)
    p.add_argument("--out", help="default: bench/results/<group>")
    a = p.parse_args()
    from common.atomic import write_json, write_text
    from train.data import load_dataset

    methods = load_methods(a.group)
    cfg = load_config(ROOT / a.config)
    if not 0 < a.train_images:
        raise SystemExit("--train-images must be >= 1")
    ds = load_dataset({**cfg["data"], "train_images": a.train_images}, a.seed)
    rows = []
    with tempfile.TemporaryDirectory(prefix="methods_") as tmp:
        for method in methods:
            r = run_one(method, ds, a, Path(tmp))
            rows.append(r)
            print(f"{r['method']}: test top-1 {100 * r['test_top1']:.2f}%, train loss "
                  f"{r['train_loss_epoch_mean']:.4f} (epoch) {r['train_loss_end']:.4f} (end), "
                  f"{r['train_images_per_s']:.0f} img/s"
                  + (f", export {'passed' if r['export_passed'] else 'FAILED'}" if a.export else ""), flush=True)
    bs = cfg["train"]["batch_size"]
    result = {
        "group": a.group, "config": a.config, "model": f"WRN-{cfg['model']['depth']}-{cfg['model']['width']}",
        "dataset": cfg["data"]["dataset"], "train_images": a.train_images, "test_images": len(ds.test_y),
        "clean_train_images": min(10_000, a.train_images), "batch_size": bs,
        "steps": (a.train_images + bs - 1) // bs, "seed": a.seed, "threads": a.threads,
        "export": a.export, "cpu": platform.processor() or platform.machine(), "rows": rows,
        "command": "python bench/methods.py " + " ".join(sys.argv[1:]),
    }
    out = Path(a.out) if a.out else ROOT / "bench" / "results" / a.group
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out.with_suffix(".json"), result)
    write_text(out.with_suffix(".md"), markdown(result))
    print(f"-> {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
