"""Checkpoints: written atomically, read back with a clear error when corrupt or foreign.

Every checkpoint is read with ``torch.load(weights_only=True)``: a pickle can name any Python
function to call while it loads (a downloaded ``.pt`` could run a shell command), and torch's
weights-only unpickler refuses every such name outside tensors and plain containers before
calling anything. What this trainer writes (dicts, lists, numbers, strings, tensors) needs
nothing more, so no extra type is admitted.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path

import torch
from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling

from common.atomic import torch_save
from common.errors import UserError
from train.defaults import with_defaults
from train.models import build_model

FORMAT = "wrn1bit-checkpoint/1"


def quant_stats_state(model: torch.nn.Module) -> dict:
    """Brevitas scale-statistics still being collected (counter, running buffer, raw value).

    Brevitas' state_dict folds a half-collected buffer into the scale and, on load, ends the
    collection; a resumed run would then diverge from an uninterrupted one. This keeps the
    collection state so that resuming replays it exactly.
    """
    return {name: {"counter": int(m.counter), "buffer": m.buffer.detach().clone(),
                   "value": m.value.detach().clone()}
            for name, m in model.named_modules()
            if isinstance(m, ParameterFromRuntimeStatsScaling) and m.counter <= m.collect_stats_steps}


def restore_quant_stats(model: torch.nn.Module, state: dict) -> None:
    with torch.no_grad():
        for name, s in state.items():
            m = model.get_submodule(name)
            m.counter = s["counter"]
            m.buffer.copy_(s["buffer"])
            m.value.copy_(s["value"])


def save_checkpoint(path: Path, model: torch.nn.Module, cfg: dict, **state) -> None:
    torch_save(path, {"format": FORMAT, "config": cfg, "model_config": vars(model.cfg).copy(),
                      "model": model.state_dict(), "quant_stats": quant_stats_state(model), **state})


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"checkpoint not found: {path}")
    ckpt = _load_weights_only(path)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserError(f"{path} is not a checkpoint of this trainer (expected format {FORMAT})")
    try:  # a run saved before a config key existed reads as if it had the key's default
        ckpt["config"] = with_defaults(ckpt["config"])
    except UserError as e:
        raise UserError(f"{path}: its config does not fit this trainer: {e}") from None
    return ckpt


def _load_weights_only(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's several-paragraph message names the refused global as "GLOBAL module.name"
        refused = re.search(r"GLOBAL (\S+)", str(e))
        if refused:
            raise UserError(f"refused to load {path}: it asks for {refused.group(1)} while loading, which could run "
                            "code; a checkpoint of this trainer holds only tensors and plain data") from None
        raise UserError(f"cannot read checkpoint {path}: corrupt or not a torch file (UnpicklingError)") from None
    except Exception as e:  # torch raises many types for a truncated or foreign file
        raise UserError(f"cannot read checkpoint {path}: corrupt or not a torch file ({type(e).__name__})") from None


def save_model_only(ckpt_path: str | Path, out: str | Path) -> None:
    """A small deployable copy: config, model weights and history, no optimizer state."""
    ckpt = load_checkpoint(ckpt_path)
    keep = ("format", "config", "model_config", "model", "epoch", "history", "best", "precise_bn")
    torch_save(out, {k: ckpt[k] for k in keep if k in ckpt})


def init_from_checkpoint(model: torch.nn.Module, path: str | Path) -> None:
    """Start ``model`` from a checkpoint's weights (fine-tuning): the same architecture, any run."""
    ckpt = load_checkpoint(path)
    try:
        model.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        lines = str(e).splitlines()  # torch: a title line, then the first mismatch
        first = lines[1].strip() if len(lines) > 1 else lines[0]
        raise UserError(f"train.init_from: {path} holds a different model than this config's ({first})") from None
    restore_quant_stats(model, ckpt.get("quant_stats", {}))


def model_from_checkpoint(ckpt: dict) -> torch.nn.Module:
    model = build_model(ckpt["model_config"])
    model.load_state_dict(ckpt["model"])
    return model.eval()
