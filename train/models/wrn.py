"""Wide Residual Network WRN-d-k with 1-bit weights (McDonnell 2018).

Pre-activation blocks BN -> ReLU -> conv, (d-2)/6 blocks per stage, widths 16k/32k/64k, a
first 3x3 conv with 16k channels, stride-2 downsampling in the first block of stages 2 and 3,
and the head BN -> ReLU -> 1x1 conv to the classes -> BN -> global average pool.
Every conv, first and last included, is 1-bit: sign(w) * sqrt(2 / fan_in) by default; the other
binary-weight methods (``weight_quant``) and straight-through estimators (``weight_ste``,
``act_ste``, ``ste_clip``) are in train/quant/weights.py and train/quant/ste.py.

Hardware-ready variants (``act_bits`` set) quantize activations with k-bit unsigned QuantReLUs
(k = 1: bipolar sign activations), the input to 8 bits, and both inputs of every residual add with one shared
signed quantizer, so that the add is an integer add of two tensors with one scale (FINN maps
it to AddStreams). ``head_bits`` quantizes the class scores before the average pool so that
the accelerator's last layers are integer only.

The options are ``ModelConfig`` (train/models/config.py); the layer factory and the head are
shared with the other architectures (train/models/layers.py).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.models.config import ModelConfig
from train.models.layers import ClassifierHead, Layers


class Block(nn.Module):
    """Pre-activation residual block: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, layers: Layers, cin: int, cout: int, stride: int):
        super().__init__()
        self.bn1, self.relu1 = layers.bn(cin), layers.relu()
        self.conv1 = layers.conv(cin, cout, 3, stride)
        self.bn2, self.relu2 = layers.bn(cout), layers.relu()
        self.conv2 = layers.conv(cout, cout, 3)
        self.downsample = stride != 1 or cin != cout
        self.shortcut_kind = layers.cfg.shortcut
        if self.downsample and self.shortcut_kind == "conv":
            self.shortcut = layers.conv(cin, cout, 1, stride)
        self.stride, self.pad_channels = stride, cout - cin
        # One quantizer instance on both add inputs: same scale, so the add is integer.
        self.add_quant = layers.residual_quant()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = self.relu1(self.bn1(x))
        y = self.conv2(self.relu2(self.bn2(self.conv1(o))))
        if not self.downsample:
            s = x
        elif self.shortcut_kind == "conv":
            s = self.shortcut(o)
        else:  # the paper's: 3x3/2 average pool of the block input, zero channels appended
            s = F.avg_pool2d(x, 3, self.stride, 1, count_include_pad=False)
            s = F.pad(s, (0, 0, 0, 0, 0, self.pad_channels))
        if self.add_quant is not None:
            return self.add_quant(y) + self.add_quant(s)
        return y + s


class WRN(ClassifierHead, nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers = Layers(cfg)
        n = (cfg.depth - 2) // 6
        widths = [16 * cfg.width, 32 * cfg.width, 64 * cfg.width]
        self.input_quant = layers.input_quant()
        self.conv0 = layers.conv(cfg.in_channels, widths[0], 3)
        blocks, cin = [], widths[0]
        for stage, cout in enumerate(widths):
            for i in range(n):
                blocks.append(Block(layers, cin, cout, 2 if (stage > 0 and i == 0) else 1))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self._build_head(layers, cin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._head(self.blocks(self.conv0(self.input_quant(x))))
