"""The building blocks every architecture here is made of.

``Layers`` builds the convs, BatchNorms, activations and quantizers of one ``ModelConfig`` (1-bit
convs of the selected binary-weight method, activations of ``act_bits`` with ``act_bits: 1`` the
bipolar sign, shared signed quantizers), so the blocks of the WRN, ResNetE and BinaryDenseNet
need not know about quantization and every weight method and straight-through estimator works in
all of them. ``ClassifierHead`` is the head they all end with.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

from train.models.config import ModelConfig
from train.quant import FixedRangeUintInput, LearnedRangeReLU, SignedResidualQuant, relu_max_init
from train.quant.weights import bipolar_act_kwargs, weight_quant_kwargs


class Layers:
    """Builds the layers of one configuration, so the blocks need not know about quantization."""

    def __init__(self, cfg: ModelConfig):
        self.cfg = cfg

    def conv(self, cin: int, cout: int, k: int, stride: int = 1) -> nn.Module:
        pad = k // 2
        if not self.cfg.binary_weights:
            return nn.Conv2d(cin, cout, k, stride, pad, bias=False)
        return QuantConv2d(cin, cout, k, stride, pad, bias=False,
                           **weight_quant_kwargs(self.cfg.weight_quant, cin * k * k, self.cfg.weight_ste,
                                                 self.cfg.ste_clip))

    def bn(self, c: int) -> nn.Module:
        return nn.BatchNorm2d(c, affine=self.cfg.bn_affine)

    def relu(self) -> nn.Module:
        if self.cfg.act_bits is None:
            return nn.ReLU(inplace=False)
        if self.cfg.act_bits == 1:
            # 1-bit activations are bipolar sign(x), as in BNNs and FINN's W1A1 models. (Brevitas
            # exports an unsigned 1-bit QuantReLU as BipolarQuant, i.e. +-1, which would not
            # match what it computes in training.) Its STE is model.act_ste.
            return QuantIdentity(**bipolar_act_kwargs(self.cfg.act_ste, self.cfg.ste_clip), return_quant_tensor=False)
        return QuantReLU(act_quant=LearnedRangeReLU, bit_width=self.cfg.act_bits,
                         max_val=relu_max_init(self.cfg.act_bits), return_quant_tensor=False)

    def input_quant(self) -> nn.Module:
        if self.cfg.input_bits is None:
            return nn.Identity()
        return QuantIdentity(act_quant=FixedRangeUintInput, bit_width=self.cfg.input_bits, return_quant_tensor=False)

    def residual_quant(self) -> nn.Module | None:
        if self.cfg.residual_bits is None or self.cfg.act_bits is None:
            return None
        return QuantIdentity(act_quant=SignedResidualQuant, bit_width=self.cfg.residual_bits,
                             return_quant_tensor=False)


class ClassifierHead:
    """The head every architecture here ends with: BN -> activation -> 1-bit 1x1 conv to the
    classes -> BN (``head_bn_affine``) -> the class-score quantizer (``head_bits``) -> global
    average pool. Its modules are attributes of the network itself (``head_bn``, ``head_relu``,
    ``head_conv``, ``head_bn_out``, ``head_quant``): the names in every checkpoint."""

    def _build_head(self, layers: Layers, cin: int) -> None:
        cfg = layers.cfg
        self.head_bn, self.head_relu = layers.bn(cin), layers.relu()
        self.head_conv = layers.conv(cin, cfg.num_classes, 1)
        self.head_bn_out = nn.BatchNorm2d(cfg.num_classes, affine=cfg.head_bn_affine)
        self.head_quant = (
            QuantIdentity(act_quant=SignedResidualQuant, bit_width=cfg.head_bits, return_quant_tensor=False)
            if cfg.head_bits is not None else nn.Identity()
        )

    def _head(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head_conv(self.head_relu(self.head_bn(x)))
        x = self.head_quant(self.head_bn_out(x))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)  # exports as GlobalAveragePool

    def head_scale(self) -> float | None:
        """Scale of the quantized class scores, or None when the head is not quantized."""
        if self.cfg.head_bits is None:
            return None
        return float(self.head_quant.act_quant.scale().detach())
