"""Experiment configs: one YAML file per experiment, merged over defaults, overridable.

Overrides use dotted keys with YAML values, e.g. ``--set train.epochs=3 model.act_bits=null``.
"""

from __future__ import annotations

import copy
from dataclasses import asdict
from pathlib import Path

import yaml

from common.errors import UserError
from common.yamlfile import load_yaml_text, read_yaml
from train import CONFIG_DIR, DEFAULT_CONFIG  # noqa: F401  (re-exported)
from train.distill import validate as validate_distill
from train.models.wrn import ModelConfig
from train.optim import validate as validate_optim

DEFAULTS: dict = {
    "name": None,  # defaults to the config file's stem
    "seed": 0,
    "device": "auto",  # auto: CUDA when present, else CPU
    "data": {
        "dataset": "fashion_mnist",
        "root": None,  # None: $WRN_DATA, else ./data, plus the data set's system locations
        "val_size": 0,  # images held out of the training set to pick the best checkpoint
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
        "init_from": None,  # a checkpoint whose weights start the run (fine-tuning); None: fresh init
        "distill": None,  # {teacher: <checkpoint>, temperature, alpha}: knowledge distillation (train/distill.py)
    },
    "export": {"enabled": True, "check_images": 200},
}


def _merge(base: dict, over: dict, where: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        path = f"{where}{key}"
        if key not in base:
            raise UserError(f"unknown config key '{path}' (known here: {', '.join(sorted(base))})")
        if isinstance(base[key], dict) and base[key] and isinstance(value, dict):
            out[key] = _merge(base[key], value, path + ".")
        else:
            out[key] = copy.deepcopy(value)
    return out


def parse_override(item: str) -> dict:
    """'a.b=3' -> {'a': {'b': 3}} with the value parsed as YAML."""
    if "=" not in item:
        raise UserError(f"override '{item}' is not KEY=VALUE (e.g. train.epochs=3)")
    key, raw = item.split("=", 1)
    try:
        value = load_yaml_text(raw) if raw != "" else None
    except yaml.YAMLError as e:
        raise UserError(f"override '{item}': value is not valid YAML: {str(e).splitlines()[0]}") from None
    out: dict = {}
    node = out
    parts = key.strip().split(".")
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    node[parts[-1]] = value
    return out


FULL_PRECISION = {
    "model": {"binary_weights": False, "act_bits": None, "input_bits": None,
              "residual_bits": None, "head_bits": None},
    "train": {"distill": None},  # the twin is the baseline (and the usual teacher): labels only
}


def with_defaults(stored: dict) -> dict:
    """A config saved by an older version of this trainer, completed with the keys added since
    (their defaults keep the old behaviour), so its checkpoint can still be resumed or exported."""
    return _merge(DEFAULTS, stored)


def load_config(path: str | Path | None = None, overrides: list[str] = (),
                full_precision: bool = False) -> dict:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    user = read_yaml(path) or {}
    if not isinstance(user, dict):
        raise UserError(f"config file {path} must hold a mapping at the top level")
    cfg = _merge(DEFAULTS, user)
    for item in overrides:
        cfg = _merge(cfg, parse_override(item))
    if full_precision:
        cfg = _merge(cfg, FULL_PRECISION)
    if cfg["name"] is None:
        cfg["name"] = path.stem + ("-fp" if full_precision else "")
    validate(cfg)
    return cfg


def validate(cfg: dict) -> None:
    try:
        ModelConfig.from_dict({**cfg["model"], "in_channels": 1, "num_classes": 10})
    except (ValueError, TypeError) as e:
        raise UserError(f"bad model config: {e}") from None
    t = cfg["train"]
    if int(t["epochs"]) < 1 or int(t["batch_size"]) < 1:
        raise UserError("train.epochs and train.batch_size must be >= 1")
    if t["schedule"]["name"] not in ("sgdr", "constant"):
        raise UserError(f"unknown schedule '{t['schedule']['name']}' (known: sgdr, constant)")
    validate_optim(cfg)
    validate_distill(cfg)
