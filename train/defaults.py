"""Every key of an experiment config with its default, and the merge that lays a config over them.

A module of its own, below train/config.py, because checkpoints need it too (``with_defaults``
completes a stored config with the keys added since) while train/config.py imports the check of
the distillation settings, and distillation loads its teacher from a checkpoint: with the
defaults in train/config.py that was an import cycle.
"""

from __future__ import annotations

import copy
from dataclasses import asdict

from common.errors import UserError
from train.models import ModelConfig

DEFAULTS: dict = {
    "name": None,  # defaults to the config file's stem
    "seed": 0,
    "device": "auto",  # auto: CUDA when present, else CPU
    "data": {
        "dataset": "fashion_mnist",
        "root": None,  # None: $WRN_DATA, else ./data, plus the data set's system locations
        # a seeded part of the training set held out: best.pt and precise BN's choice use it, never the test set
        "val_images": 0,
        "train_images": None,  # a seeded subset of this many training images (short runs); None: all
        "download": True,  # CIFAR/SVHN: try to download when the files are missing
        "augment": {"shift": 2, "flip": True, "cutout": 10},
    },
    "model": {k: v for k, v in asdict(ModelConfig()).items() if k not in ("in_channels", "num_classes")},
    "train": {
        "epochs": 31,
        "batch_size": 125,
        "lr": 0.1,
        "momentum": 0.9,
        "optimizer": "sgd",  # sgd | adam (train/optim.py); lr and schedule apply to both
        "weight_update": "binaryconnect",  # binaryconnect (latent float weights) | stochastic_rounding
        "weight_decay": 5e-4,  # conv weights only, never BatchNorm or quantizer scales
        "schedule": {"name": "sgdr", "t0": 1, "t_mult": 2},
        "eval_batch_size": 1000,
        "threads": None,  # torch CPU threads; None: torch's default
        "amp": None,  # mixed precision: null | bf16 | fp16 (CUDA); quantizers stay float32 (train/amp.py)
        "init_from": None,  # a checkpoint whose weights start the run (fine-tuning); None: fresh init
        "distill": None,  # {teacher: <checkpoint>, temperature, alpha}: knowledge distillation (train/distill.py)
    },
    "export": {"enabled": True, "check_images": 200},
}


def merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{where}{key}"
        if key not in base:
            raise UserError(f"unknown config key '{path}' (known here: {', '.join(sorted(base))})")
        if isinstance(base[key], dict) and base[key] and isinstance(value, dict):
            out[key] = merge(base[key], value, path + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def with_defaults(stored: dict) -> dict:
    """A config saved by an older version of this trainer, completed with the keys added since
    (their defaults keep the old behaviour), so its checkpoint can still be resumed or exported;
    keys renamed since get their new name (data.val_size -> data.val_images)."""
    stored = copy.deepcopy(stored)
    data = stored.get("data") or {}
    if "val_size" in data:
        data["val_images"] = data.pop("val_size")
    return merge(DEFAULTS, stored)
