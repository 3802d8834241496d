"""BinaryDenseNet (Bethge et al. 2019, "BinaryDenseNet: Developing an Architecture for Binary
Neural Networks"): dense blocks of 1-bit convs whose outputs are concatenated, so that features
are kept rather than summed; transitions that downsample with MaxPool -> activation -> 1x1 conv.

Dense layer (``dense_layers[b]`` of them in block b), each adding ``growth_rate`` channels:

    x -> BN -> act -> binary 3x3 conv -> BN -> q_b -> concat(x, .)

Transition between blocks (the paper's order, which keeps the pool before the binarization):

    x -> BN -> MaxPool 2x2/2 -> act -> binary 1x1 conv to round(C / reduction) channels -> BN -> q_{b+1}

act is the bipolar sign when ``act_bits`` is 1. Hardware models quantize everything that enters
the concatenated tensor of block b with one shared signed quantizer q_b (the block input and every
layer's new channels), so the whole tensor is integer on one scale and the concatenation is a
plain concatenation of integer streams; the stem's output goes through q_0. Stem and head are
those of train/models/bethge.py (the head's BN -> act -> 1x1 conv acts on the last block's output).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from train.models.bethge import BethgeNet
from train.models.layers import Layers


def _quant(q: nn.Module | None, x: torch.Tensor) -> torch.Tensor:
    return x if q is None else q(x)


class DenseLayer(nn.Module):
    def __init__(self, layers, cin: int, growth: int, block_quant: nn.Module | None):
        super().__init__()
        self.bn_in, self.act = layers.bn(cin), layers.relu()
        self.conv = layers.conv(cin, growth, 3)
        self.bn_out = layers.bn(growth)
        self.block_quant = block_quant  # the same module in every layer of the block (one scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn_out(self.conv(self.act(self.bn_in(x))))
        return torch.cat([x, _quant(self.block_quant, y)], dim=1)


class Transition(nn.Module):
    def __init__(self, layers, cin: int, cout: int, next_quant: nn.Module | None):
        super().__init__()
        self.bn_in, self.act = layers.bn(cin), layers.relu()
        self.conv = layers.conv(cin, cout, 1)
        self.bn_out = layers.bn(cout)
        self.next_quant = next_quant

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise ValueError(f"BinaryDenseNet transition needs an even feature map, got {tuple(x.shape[-2:])}")
        x = self.act(F.max_pool2d(self.bn_in(x), 2, 2))
        return _quant(self.next_quant, self.bn_out(self.conv(x)))


class BinaryDenseNet(BethgeNet):
    def __init__(self, cfg):
        super().__init__()
        self.cfg = cfg
        layers = Layers(cfg)
        n_blocks = len(cfg.dense_layers)
        reductions = (cfg.reduction if isinstance(cfg.reduction, list) else [cfg.reduction] * (n_blocks - 1))
        # one quantizer per dense block, used by the stem / transition that feeds the block and by
        # each of its layers (registered under each of them; parameters() counts it once)
        quants = [layers.residual_quant() for _ in range(n_blocks)]
        self.block_quants = nn.ModuleList([q for q in quants if q is not None])
        self._build_stem(layers, cfg.base_channels, quants[0])
        body, c = [], cfg.base_channels
        self.channels = []  # channels at the end of each dense block
        for b, n_layers in enumerate(cfg.dense_layers):
            for _ in range(n_layers):
                body.append(DenseLayer(layers, c, cfg.growth_rate, quants[b]))
                c += cfg.growth_rate
            self.channels.append(c)
            if b < n_blocks - 1:
                cout = max(1, int(round(c / reductions[b])))
                body.append(Transition(layers, c, cout, quants[b + 1]))
                c = cout
        self.body = nn.Sequential(*body)
        self._build_head(layers, c)
