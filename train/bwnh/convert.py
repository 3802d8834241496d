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

from train.bwnh.layerwise import Inputs, LayerResult, binarize
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.errors import UserError
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
