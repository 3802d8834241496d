"""From a full-precision checkpoint to the binary weights and per-channel scales of BWNH.

The state dict returned is the full-precision one with every conv weight replaced by the
latent weight ``B * a`` (per output channel). Its keys are those of the 1-bit WRN's
QuantConv2d weights (``conv0.weight``, ``blocks.0.conv1.weight``, ...: the full-precision twin
names its nn.Conv2d weights the same way), its signs are B, and its per-channel mean |w| is
exactly a, so a per-channel-scale binary quantizer initialised from mean |w| starts from A.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from common.errors import UserError
from train.bwnh.layerwise import Inputs, LayerResult, binarize
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.models.wrn import WRN


@dataclass
class BinaryInit:
    layers: dict  # conv name -> {"B": int8 tensor like the weight, "a": float tensor (out,)}
    state_dict: dict  # the full-precision state dict, conv weights replaced by B * a
    results: list  # LayerResult per conv, bottom up


def load_full_precision(path: str | Path) -> tuple[dict, WRN]:
    """The checkpoint and its model; a 1-bit checkpoint is refused (BWNH starts from floats)."""
    ckpt = load_checkpoint(path)
    if ckpt["model_config"].get("binary_weights", True):
        raise UserError(f"{path} is a 1-bit-weight checkpoint; BWNH binarizes a full-precision one "
                        "(trained with `python -m train --full-precision`)")
    return ckpt, model_from_checkpoint(ckpt)


# Architecture options that must agree between the float checkpoint and the model fine-tuned from it.
SAME_ARCHITECTURE = ("depth", "width", "shortcut", "bn_affine", "head_bn_affine")


def check_same_architecture(ckpt_model_config: dict, model_config: dict, where: str) -> None:
    diff = [f"{k} {ckpt_model_config.get(k)!r} vs {model_config.get(k)!r}"
            for k in SAME_ARCHITECTURE if ckpt_model_config.get(k) != model_config.get(k)]
    if diff:
        raise UserError(f"the config's model differs from the one in {where}: {', '.join(diff)}")


def load_binary_init(model: torch.nn.Module, state_dict: dict) -> None:
    """Load BWNH's state dict into a binary WRN built from a config.

    Every tensor of the float model must fit the binary one; the binary model may have more:
    its quantizers' own state (activation ranges, residual and input quantizers, learned
    weight scales), which keeps its initial value (a weight scale initialised from mean |w|
    then starts at A).
    """
    own = model.state_dict()
    for k, v in state_dict.items():
        if k not in own or own[k].shape != v.shape:
            raise UserError(f"BWNH's weights do not fit the model to fine-tune: {k} "
                            f"{tuple(v.shape)} vs {tuple(own[k].shape) if k in own else 'absent'}")
    missing = [k for k in own if k not in state_dict and "quant" not in k]
    if missing:
        raise UserError(f"the model to fine-tune has tensors the full-precision checkpoint lacks: {', '.join(missing[:3])}")
    model.load_state_dict(state_dict, strict=False)


def binary_layers(results: list[LayerResult]) -> dict:
    return {r.name: {"B": torch.from_numpy(r.B.T.copy()).to(torch.int8).reshape(r.shape),
                     "a": torch.from_numpy(r.a.copy()).float()} for r in results}


def bwnh_from_checkpoint(path: str | Path, images: torch.Tensor, inputs: Inputs = "binarized",
                         batch_size: int = 100, max_iters: int = 50, log=None) -> BinaryInit:
    """Binarize the full-precision checkpoint at ``path`` with BWNH on ``images`` (uint8 NCHW)."""
    ckpt, model = load_full_precision(path)
    expect = (ckpt["model_config"]["in_channels"],)
    if tuple(images.shape[1:2]) != expect:
        raise UserError(f"{path} takes {expect[0]}-channel images, the calibration images have {images.shape[1]}")
    results = binarize(model, images, inputs, batch_size, max_iters, log)
    return BinaryInit(binary_layers(results), {k: v.clone() for k, v in model.state_dict().items()}, results)
