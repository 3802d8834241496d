"""Experiment configs: one YAML file per experiment, merged over the defaults (train/defaults.py),
overridable.

Overrides use dotted keys with YAML values, e.g. ``--set train.epochs=3 model.act_bits=null``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from common.errors import UserError
from common.yamlfile import load_yaml_text, read_yaml
from train import CONFIG_DIR, DEFAULT_CONFIG  # noqa: F401  (re-exported)
from train.defaults import DEFAULTS, merge
from train.distill import validate as validate_distill
from train.models import ModelConfig
from train.optim import validate as validate_optim


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


def load_config(path: str | Path | None = None, overrides: list[str] = (),
                full_precision: bool = False) -> dict:
    path = Path(path) if path is not None else DEFAULT_CONFIG
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    user = read_yaml(path) or {}
    if not isinstance(user, dict):
        raise UserError(f"config file {path} must hold a mapping at the top level")
    cfg = merge(DEFAULTS, user)
    for item in overrides:
        cfg = merge(cfg, parse_override(item))
    if full_precision:
        cfg = merge(cfg, FULL_PRECISION)
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
