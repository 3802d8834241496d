"""Pieces shared by the Bethge et al. (2019) architectures: stem and head.

Both ResNetE (train/models/resnete.py) and BinaryDenseNet (train/models/densenet.py) use the
layer factory the WRN uses (``Layers`` in train/models/layers.py: 1-bit convs of the selected
binary-weight method, BN, activations of ``act_bits`` with ``act_bits: 1`` the bipolar sign,
shared signed quantizers), so every weight method and straight-through estimator works unchanged.

Stem: the optional 8-bit input quantizer, a 1-bit 3x3 conv, BN, and (hardware models) a signed
quantizer that puts the first feature map on the integer grid of the first residual stream /
dense block. Head: the WRN's (``ClassifierHead``), BN -> activation -> 1-bit 1x1 conv to the
classes -> BN (``head_bn_affine``) -> the class-score quantizer -> global average pool.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from train.models.layers import ClassifierHead


class BethgeNet(ClassifierHead, nn.Module):
    """Base: stem and head around ``self.body`` (set by the subclass)."""

    def _build_stem(self, layers, cout: int, stream_quant: nn.Module | None) -> None:
        cfg = layers.cfg
        self.input_quant = layers.input_quant()
        self.conv0 = layers.conv(cfg.in_channels, cout, 3)
        self.bn0 = layers.bn(cout)
        self.stem_quant = stream_quant if stream_quant is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._head(self.body(self.stem_quant(self.bn0(self.conv0(self.input_quant(x))))))

    def full_precision_convs(self) -> list[tuple[nn.Module, nn.Module | None]]:
        """(conv, the BN right after it or None) for every conv that is full precision by design
        in a 1-bit model (none unless a subclass says so); the export check lists them apart."""
        return []
