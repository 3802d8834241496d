"""Model definitions: the 1-bit-weight Wide Residual Network and Bethge et al.'s ResNetE and
BinaryDenseNet, selected by ``ModelConfig.arch``.

The architectures import their options (train/models/config.py) and shared layers
(train/models/layers.py) from the modules themselves, never from this package, so that this
dispatcher can import every architecture without an import cycle.
"""

from __future__ import annotations

import torch.nn as nn

from train.models.config import ModelConfig
from train.models.densenet import BinaryDenseNet
from train.models.resnete import ResNetE
from train.models.wrn import WRN

# ModelConfig refuses any arch not listed in its ARCHS, so every valid config has an entry here.
ARCHITECTURES: dict[str, type[nn.Module]] = {"wrn": WRN, "resnete": ResNetE, "densenet": BinaryDenseNet}


def build_model(cfg: ModelConfig | dict) -> nn.Module:
    """The model of ``cfg.arch``: WRN, ResNetE or BinaryDenseNet."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    return ARCHITECTURES[cfg.arch](cfg)


def count_conv_weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))


__all__ = ["WRN", "ResNetE", "BinaryDenseNet", "ModelConfig", "build_model", "count_conv_weights"]
