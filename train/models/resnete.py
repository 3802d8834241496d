"""ResNetE (Bethge et al. 2019, "Back to Simplicity: How to Train Accurate BNNs from Scratch?"
and "BinaryDenseNet"): a ResNet-18-style network without bottlenecks in which every 1-bit conv
has its own shortcut.

A stage has ``stage_blocks[s]`` basic blocks of two units; a unit is

    x -> act -> binary 3x3 conv -> BN -> (+) x      (act: the bipolar sign when act_bits is 1)

so the shortcut goes around every conv, not around pairs as in ResNet. Channels double and the
feature map halves at the first unit of every stage after the first; that unit's shortcut is
average pool 2x2/2 -> 1x1 conv -> BN, the conv 1-bit unless ``fp_downsample`` (the paper keeps
it full precision; such a conv cannot run on the 1-bit hardware, see flows/). Stem and head are
those of train/models/bethge.py. Hardware models quantize both add inputs with one shared signed
quantizer per unit (integer adds, as in the WRN), and the stem's output with the first one's
kind, so the residual stream is integer from the first conv on.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.models.bethge import BethgeNet
from train.models.layers import Layers


class Unit(nn.Module):
    """act -> 3x3 conv (stride 1 or 2) -> BN, plus a shortcut: identity or avgpool+1x1 conv+BN."""

    def __init__(self, layers, cin: int, cout: int, stride: int):
        super().__init__()
        self.act = layers.relu()
        self.conv = layers.conv(cin, cout, 3, stride)
        self.bn = layers.bn(cout)
        self.downsample = stride != 1 or cin != cout
        if self.downsample:
            if stride != 2:
                raise ValueError(f"a ResNetE downsampling unit has stride 2, got {stride}")
            if layers.cfg.fp_downsample or not layers.cfg.binary_weights:
                self.shortcut_conv = nn.Conv2d(cin, cout, 1, bias=False)  # full precision on purpose
            else:
                self.shortcut_conv = layers.conv(cin, cout, 1)
            self.shortcut_bn = layers.bn(cout)
        self.add_quant = layers.residual_quant()  # one instance on both add inputs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn(self.conv(self.act(x)))
        if self.downsample:
            if x.shape[-1] % 2 or x.shape[-2] % 2:
                raise ValueError(f"ResNetE downsampling needs an even feature map, got {tuple(x.shape[-2:])}")
            s = self.shortcut_bn(self.shortcut_conv(F.avg_pool2d(x, 2, 2)))
        else:
            s = x
        if self.add_quant is not None:
            return self.add_quant(y) + self.add_quant(s)
        return y + s


class ResNetE(BethgeNet):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        layers = Layers(cfg)
        c = cfg.base_channels
        self._build_stem(layers, c, layers.residual_quant())
        units, cin = [], c
        for stage, blocks in enumerate(cfg.stage_blocks):
            cout = c * 2 ** stage
            for i in range(2 * blocks):
                units.append(Unit(layers, cin, cout, 2 if (stage > 0 and i == 0) else 1))
                cin = cout
        self.body = nn.Sequential(*units)
        self._build_head(layers, cin)

    def full_precision_convs(self) -> list[tuple[nn.Module, nn.Module]]:
        if not self.cfg.fp_downsample:
            return []
        return [(u.shortcut_conv, u.shortcut_bn) for u in self.body if u.downsample]
