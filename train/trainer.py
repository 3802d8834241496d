"""The training loop: SGD + momentum or Adam, SGDR, cutout; resumable, deterministic with a seed.

A run directory holds ``config.yaml``, ``metrics.jsonl`` (one line per epoch), ``last.pt`` and
``best.pt`` (written atomically), ``curves.png`` and, at the end, ``final.json``.
Randomness of epoch e comes from a generator seeded with (seed, e) (train/seeding.py), so a run
resumed from the checkpoint of epoch e replays exactly what an uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import json
import os
import time
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import yaml
from tqdm import tqdm

from common.atomic import write_json, write_text
from common.errors import UserError
from train.amp import MixedPrecision, keep_quantizers_fp32
from train.checkpoint import init_from_checkpoint, load_checkpoint, restore_quant_stats, save_checkpoint
from train.data import DATASETS, load_dataset
from train.data.augment import augment_batch
from train.distill import Distiller
from train.distributed import Processes, unwrapped
from train.export import export_run
from train.models import build_model, count_conv_weights
from train.optim import build_optimizer, rounding_generator, weight_update_hook
from train.plot import plot_history
from train.schedule import lr_at
from train.seeding import epoch_generator


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device '{name}' asked for, but no CUDA device is present")
    try:
        return torch.device(name)
    except RuntimeError:
        raise UserError(f"unknown device '{name}' (auto, cpu, cuda or cuda:N)") from None


def to_float(x_uint8: torch.Tensor, device: torch.device) -> torch.Tensor:
    if device.type == "cuda":  # page-locked: the copy to the GPU is asynchronous
        x_uint8 = x_uint8.pin_memory()
    return x_uint8.to(device, non_blocking=True).float().div_(255.0)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int, device: torch.device | str,
             procs: Processes = Processes()) -> tuple[float, float]:
    """(mean loss, top-1) over all of x, y; with several processes each scores its share."""
    device = torch.device(device)
    model = unwrapped(model).eval()
    n = len(y)
    x, y = procs.share(x), procs.share(y)
    loss, correct = 0.0, 0
    for i in range(0, len(y), batch):
        out = model(to_float(x[i:i + batch], device))
        t = y[i:i + batch].to(device)
        loss += F.cross_entropy(out, t, reduction="sum").item()
        correct += (out.argmax(1) == t).sum().item()
    loss, correct = procs.total(loss, correct)
    return loss / n, correct / n


def train_one_epoch(model, opt, ds, cfg, epoch: int, device, progress: bool, rounding=None,
                    distiller=None, procs: Processes = Processes(), precision: MixedPrecision | None = None) -> dict:
    """``rounding``: train.optim.StochasticRounding run after every optimizer step (None: BC).
    ``distiller``: train.distill.Distiller, whose loss replaces cross-entropy (None: labels only).
    ``procs``: with several processes each trains on its share of every batch (train/distributed.py).
    ``precision``: train.amp.MixedPrecision (None: float32)."""
    precision = precision or MixedPrecision(None, device)
    tcfg, flip_ok = cfg["train"], DATASETS[ds.name][2]
    gen = epoch_generator(cfg["seed"], epoch)
    sr_gen = rounding_generator(cfg["seed"], epoch) if rounding is not None else None
    n, bs = len(ds.train_y), tcfg["batch_size"]
    perm = torch.randperm(n, generator=gen)
    steps = (n + bs - 1) // bs
    model.train()
    loss_sum, correct, seen, t0 = 0.0, 0, 0, time.time()
    bar = tqdm(range(steps), desc=f"epoch {epoch + 1}/{tcfg['epochs']}", leave=False,
               disable=not (progress and procs.main), unit="batch")
    for step in bar:
        lr = lr_at(epoch + step / steps, tcfg)
        for g in opt.param_groups:
            g["lr"] = lr
        idx = perm[step * bs:(step + 1) * bs]
        if len(idx) < procs.world:  # a last batch too small to give every process an image
            continue
        # the whole batch is augmented, so the draws from gen do not depend on the processes
        x = procs.share(augment_batch(to_float(ds.train_x[idx], device), cfg["data"]["augment"], flip_ok, gen))
        y = procs.share(ds.train_y[idx]).to(device)
        with precision.forward():
            out = model(x)
            loss = F.cross_entropy(out, y) if distiller is None else distiller.loss(out, x, y)
        opt.zero_grad(set_to_none=True)
        precision.step(loss, opt)
        if rounding is not None:
            rounding.round_all(sr_gen)
        loss_sum += loss.item() * len(y)
        correct += (out.argmax(1) == y).sum().item()
        seen += len(y)
        bar.set_postfix(loss=f"{loss.item():.3f}", lr=f"{lr:.4f}")
    loss_sum, correct, seen = procs.total(loss_sum, correct, seen)
    seconds = time.time() - t0
    return {"train_loss": loss_sum / seen, "train_top1": correct / seen, "lr_end": lr,
            "seconds": seconds, "train_images_per_s": seen / seconds}


# Settings of the machine, not of the experiment: a resumed run takes them from the command line,
# so a run started on 2 CPU threads can go on with 16, or on a GPU.
RUNTIME_KEYS = (("device",), ("train", "threads"), ("train", "eval_batch_size"))


def _parent(cfg: dict, path: tuple[str, ...]) -> dict:
    """The dict that holds the key path[-1] of a config (made where missing)."""
    for key in path[:-1]:
        cfg = cfg.setdefault(key, {})
    return cfg


def _runtime_split(cfg: dict) -> tuple[dict, dict]:
    """(cfg without RUNTIME_KEYS, {path: value} of those it has)."""
    rest, runtime = copy.deepcopy(cfg), {}
    for path in RUNTIME_KEYS:
        node = _parent(rest, path)
        if path[-1] in node:
            runtime[path] = node.pop(path[-1])
    return rest, runtime


def resumed_config(stored: dict, given: dict, where: Path) -> dict:
    """The config a resumed run goes on with: the checkpoint's own, except for RUNTIME_KEYS."""
    stored_rest, stored_rt = _runtime_split(stored)
    given_rest, given_rt = _runtime_split(given)
    say = print if os.environ.get("RANK", "0") == "0" else (lambda *a, **k: None)  # torchrun: rank 0 speaks
    if stored_rest != given_rest:  # the run's own config wins: it is what the checkpoint was trained with
        say(f"[train] --resume: using the config stored in {where}, not the one given", flush=True)
    changed = {p: v for p, v in given_rt.items() if stored_rt.get(p) != v}
    if changed:
        say("[train] --resume: this machine's settings: "
              + ", ".join(f"{'.'.join(p)}={v}" for p, v in changed.items()), flush=True)
    cfg = copy.deepcopy(stored)
    for path, value in changed.items():
        _parent(cfg, path)[path[-1]] = value
    return cfg


def fit(cfg: dict, run_dir: str | Path, resume: bool = False, progress: bool = True,
        export: bool | None = None, ds=None, init_model=None, extend_to: int | None = None) -> dict:
    """Train ``cfg`` in ``run_dir``; return the final report (also written as final.json).

    ``ds``: an already loaded data set (e.g. a benchmark's subset) instead of ``cfg['data']``'s.
    ``init_model(model)``, when given, sets the freshly built model's starting weights (e.g.
    BWNH's binarization, train.bwnh), in place of ``train.init_from``; a resumed run starts
    from its checkpoint instead.
    ``extend_to``: a resumed run goes on to this epoch instead of its config's train.epochs.
    """
    run_dir = Path(run_dir)
    last = run_dir / "last.pt"
    if resume:
        if not last.is_file():
            raise UserError(f"--resume: no checkpoint to resume from at {last}")
        ckpt = load_checkpoint(last)
        cfg = resumed_config(ckpt["config"], cfg, last)
        if extend_to is not None:
            if extend_to < ckpt["epoch"]:
                raise UserError(f"--extend-to {extend_to}: {last} has already trained {ckpt['epoch']} epochs")
            cfg = {**cfg, "train": {**cfg["train"], "epochs": int(extend_to)}}
    elif last.exists():
        raise UserError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --run-dir")
    tcfg = cfg["train"]
    if tcfg.get("threads"):
        torch.set_num_threads(int(tcfg["threads"]))
    device = pick_device(cfg["device"])
    procs = Processes.from_env(device)
    device = procs.device(device)
    ds = ds if ds is not None else load_dataset(cfg["data"], cfg["seed"])
    torch.manual_seed(cfg["seed"])
    model_cfg = {**cfg["model"], "in_channels": ds.image_shape[0], "num_classes": ds.num_classes}
    model = build_model(model_cfg)
    if init_model is not None and not resume:
        init_model(model)
    elif tcfg["init_from"] is not None and not resume:
        init_from_checkpoint(model, tcfg["init_from"])
    rounding = weight_update_hook(model, cfg)  # SR: weights onto their grid; BC: None
    if resume:
        # before the optimizer is built: Brevitas' scale parameters are new objects after loading
        model.load_state_dict(ckpt["model"])
        restore_quant_stats(model, ckpt.get("quant_stats", {}))
    model.to(device)
    precision = MixedPrecision(tcfg["amp"], device)
    if tcfg["amp"] is not None:
        keep_quantizers_fp32(model)
    opt = build_optimizer(model, tcfg)
    distiller = Distiller.from_config(cfg, ds.image_shape, ds.num_classes, device)
    model = procs.wrap(model, device)  # after the optimizer: its param groups name the model's modules
    history, best, start = [], None, 0
    if resume:
        opt.load_state_dict(ckpt["optimizer"])
        history, best, start = ckpt["history"], ckpt["best"], ckpt["epoch"]
        precision.load_state_dict(ckpt.get("grad_scaler"))
    plain = unwrapped(model)
    if procs.main:
        run_dir.mkdir(parents=True, exist_ok=True)
        write_text(run_dir / "config.yaml", yaml.safe_dump(cfg, sort_keys=False))
    select_on = "val" if ds.val_y is not None else "test"
    say = print if procs.main else (lambda *a, **k: None)
    say(f"[train] {cfg['name']}: {plain.cfg.describe()} on {ds.name} "
        f"({len(ds.train_y)} train, {len(ds.test_y)} test, from {ds.source}), "
        f"{count_conv_weights(plain)} conv weights, device {device}, epochs {start + 1}..{tcfg['epochs']}"
        + (f", {procs.world} processes ({procs.backend}; {procs.bn_statistics()})" if procs.world > 1 else ""),
        flush=True)
    for epoch in range(start, tcfg["epochs"]):
        row = {"epoch": epoch + 1, **train_one_epoch(model, opt, ds, cfg, epoch, device, progress, rounding, distiller,
                                                     procs, precision)}
        row["test_loss"], row["test_top1"] = evaluate(model, ds.test_x, ds.test_y, tcfg["eval_batch_size"], device,
                                                      procs)
        if ds.val_y is not None:
            row["val_loss"], row["val_top1"] = evaluate(model, ds.val_x, ds.val_y, tcfg["eval_batch_size"], device,
                                                        procs)
        history.append(row)
        score = row[f"{select_on}_top1"]
        is_best = best is None or score > best["score"]
        if is_best:
            best = {"epoch": epoch + 1, "score": score, "selected_on": select_on, "test_top1": row["test_top1"]}
        if procs.main:
            state = dict(optimizer=opt.state_dict(), epoch=epoch + 1, history=history, best=best,
                         grad_scaler=precision.state_dict())
            save_checkpoint(last, plain, cfg, **state)
            if is_best:
                save_checkpoint(run_dir / "best.pt", plain, cfg, **state)
            write_text(run_dir / "metrics.jsonl", "".join(json.dumps(h) + "\n" for h in history))
            plot_history(history, run_dir / "curves.png", cfg["name"],
                         "cross-entropy" if distiller is None else "distillation")
        say(f"[train] epoch {epoch + 1}/{tcfg['epochs']} lr {row['lr_end']:.4f} "
              f"loss {row['train_loss']:.4f} train {100 * row['train_top1']:.2f}% "
              f"test {100 * row['test_top1']:.2f}% ({row['train_images_per_s']:.0f} img/s)", flush=True)
    final = {
        "name": cfg["name"], "dataset": ds.name, "epochs": tcfg["epochs"],
        "test_top1": history[-1]["test_top1"], "best": best,
        "conv_weights": count_conv_weights(plain),
        "binary_weights": cfg["model"]["binary_weights"], "act_bits": cfg["model"]["act_bits"],
        "train_seconds": sum(h["seconds"] for h in history),
        "device": str(device), "torch_threads": torch.get_num_threads(), "processes": procs.world,
    }
    if procs.main:
        write_json(run_dir / "final.json", final)
        do_export = cfg["export"]["enabled"] if export is None else export
        if do_export and cfg["model"]["binary_weights"]:
            final["export"] = export_run(run_dir, ds=ds)
            write_json(run_dir / "final.json", final)
    procs.barrier()  # the other processes end with rank 0's files written
    procs.close()
    return final
