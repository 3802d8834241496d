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
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

from train.quant import FixedRangeUintInput, LearnedRangeReLU, SignedResidualQuant, relu_max_init
from train.quant.ste import check_ste_clip, check_ste_kind
from train.quant.weights import bipolar_act_kwargs, check_weight_quant, weight_quant_kwargs

Shortcut = Literal["conv", "avgpool_pad"]
ARCHS = ("wrn", "resnete", "densenet")
# per-arch defaults of the list-valued keys (None in the config: take these)
DEFAULT_STAGE_BLOCKS = [2, 2, 2, 2]  # ResNetE-18: 4 stages of 2 basic blocks (2 convs each)
DEFAULT_DENSE_LAYERS = [6, 6, 6, 5]  # BinaryDenseNet-28


@dataclass
class ModelConfig:
    depth: int = 20
    width: int = 10
    num_classes: int = 10
    in_channels: int = 3
    binary_weights: bool = True  # False: the full-precision twin's weights
    act_bits: int | None = None  # None: full-precision ReLU (the paper's setting)
    input_bits: int | None = None  # 8 for hardware models
    residual_bits: int | None = None  # shared quantizer on both add inputs; default: act_bits + 2
    head_bits: int | None = None  # quantized class scores before the pool (hardware)
    bn_affine: bool = False
    # The head's last BN (before the pool): without affine (the paper) every class score has unit
    # variance, so the logits stay within a few units and softmax cannot become confident: a
    # small binary WRN then underfits (Fashion-MNIST WRN-8-2 W1A2, one epoch: train loss 1.24 ->
    # 0.79, test top-1 75.3% -> 79.5% with a learned per-class scale and offset). It folds into
    # the head's thresholds like every other BN.
    head_bn_affine: bool = False
    shortcut: Shortcut = "avgpool_pad"
    # Binary-weight method and straight-through estimators. The defaults are the behaviour of
    # checkpoints written before these keys existed (their model_config lacks them).
    weight_quant: str = "he_const"  # he_const | bwn | bwn_learned | sign
    weight_ste: str = "identity"  # identity | clipped | approxsign (McDonnell: identity)
    act_ste: str = "clipped"  # of 1-bit activations; Brevitas' bipolar quantizer clips at 1
    ste_clip: float = 1.0  # t_clip of the clipped and approxsign STEs
    # Architecture (Bethge et al. 2019, train/models/resnete.py and densenet.py). depth, width and
    # shortcut apply to the WRN only; the keys below to the Bethge architectures only.
    arch: str = "wrn"  # wrn | resnete | densenet
    base_channels: int = 64  # resnete: channels of the stem and the first stage; densenet: of the stem
    stage_blocks: list | None = None  # resnete: basic blocks (2 convs) per stage; None: [2, 2, 2, 2]
    dense_layers: list | None = None  # densenet: layers per dense block; None: [6, 6, 6, 5]
    growth_rate: int = 64  # densenet: channels each dense layer adds
    reduction: float | list = 2.0  # densenet: channel divisor of each transition (one, or one per transition)
    fp_downsample: bool = False  # resnete: full-precision 1x1 downsampling convs (not 1-bit hardware)

    def __post_init__(self):
        if self.arch not in ARCHS:
            raise ValueError(f"arch must be one of {', '.join(ARCHS)}; got {self.arch!r}")
        if self.arch == "wrn":
            if self.depth < 8 or (self.depth - 2) % 6 != 0:
                raise ValueError(f"WRN depth must be 6n+2 with n >= 1 (8, 14, 20, ...), got {self.depth}")
            if self.width < 1:
                raise ValueError(f"WRN width factor must be >= 1, got {self.width}")
        self._check_bethge()
        for name in ("act_bits", "input_bits", "residual_bits", "head_bits"):
            bits = getattr(self, name)
            if bits is not None and not 1 <= int(bits) <= 8:
                raise ValueError(f"{name} must be 1..8 or null, got {bits}")
        if self.shortcut not in ("conv", "avgpool_pad"):
            raise ValueError(f"shortcut must be 'conv' or 'avgpool_pad', got {self.shortcut!r}")
        check_weight_quant(self.weight_quant)
        for name in ("weight_ste", "act_ste"):
            check_ste_kind(getattr(self, name), name)
        check_ste_clip(self.ste_clip)
        if self.act_bits is not None and self.residual_bits is None:
            self.residual_bits = min(8, self.act_bits + 2)

    def _check_bethge(self) -> None:
        def positive_int(name, v):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

        def int_list(name, v):
            if not isinstance(v, (list, tuple)) or not v:
                raise ValueError(f"{name} must be a non-empty list of positive integers, got {v!r}")
            for x in v:
                positive_int(f"every entry of {name}", x)
            return [int(x) for x in v]

        positive_int("base_channels", self.base_channels)
        positive_int("growth_rate", self.growth_rate)
        if self.stage_blocks is None:
            self.stage_blocks = list(DEFAULT_STAGE_BLOCKS)
        self.stage_blocks = int_list("stage_blocks", self.stage_blocks)
        if self.dense_layers is None:
            self.dense_layers = list(DEFAULT_DENSE_LAYERS)
        self.dense_layers = int_list("dense_layers", self.dense_layers)
        reductions = self.reduction if isinstance(self.reduction, (list, tuple)) else [self.reduction]
        for r in reductions:
            if isinstance(r, bool) or not isinstance(r, (int, float)) or not r >= 1:
                raise ValueError(f"reduction must be a number >= 1 or a list of them, got {self.reduction!r}")
        if isinstance(self.reduction, (list, tuple)):
            if len(self.reduction) != len(self.dense_layers) - 1:
                raise ValueError(f"reduction lists one divisor per transition ({len(self.dense_layers) - 1} for "
                                 f"{len(self.dense_layers)} dense blocks), got {len(self.reduction)}")
            self.reduction = [float(r) for r in self.reduction]
        if not isinstance(self.fp_downsample, bool):
            raise ValueError(f"fp_downsample must be true or false, got {self.fp_downsample!r}")
        if self.fp_downsample and self.arch != "resnete":
            raise ValueError(f"fp_downsample applies to arch resnete only (arch is {self.arch!r})")

    def describe(self) -> str:
        """A short name of the architecture, for log lines."""
        if self.arch == "resnete":
            return (f"ResNetE-{2 + 2 * sum(self.stage_blocks)} (stages {self.stage_blocks}, {self.base_channels} "
                    f"channels{', fp downsample' if self.fp_downsample else ''})")
        if self.arch == "densenet":
            return (f"BinaryDenseNet-{len(self.dense_layers) + 1 + sum(self.dense_layers)} (layers "
                    f"{self.dense_layers}, growth {self.growth_rate}, stem {self.base_channels})")
        return f"WRN-{self.depth}-{self.width}"

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model option(s): {', '.join(sorted(unknown))}")
        return cls(**d)

    @property
    def quantized_activations(self) -> bool:
        return self.act_bits is not None


class _Layers:
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


class Block(nn.Module):
    """Pre-activation residual block: x + conv(relu(bn(conv(relu(bn(x))))))."""

    def __init__(self, layers: _Layers, cin: int, cout: int, stride: int):
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


class ClassifierHead:
    """The head every architecture here ends with: BN -> activation -> 1-bit 1x1 conv to the
    classes -> BN (``head_bn_affine``) -> the class-score quantizer (``head_bits``) -> global
    average pool. Its modules are attributes of the network itself (``head_bn``, ``head_relu``,
    ``head_conv``, ``head_bn_out``, ``head_quant``): the names in every checkpoint."""

    def _build_head(self, layers: _Layers, cin: int) -> None:
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


class WRN(ClassifierHead, nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        layers = _Layers(cfg)
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


def build_model(cfg: ModelConfig | dict) -> nn.Module:
    """The model of ``cfg.arch``: WRN, ResNetE or BinaryDenseNet."""
    if isinstance(cfg, dict):
        cfg = ModelConfig.from_dict(cfg)
    if cfg.arch == "resnete":
        from train.models.resnete import ResNetE

        return ResNetE(cfg)
    if cfg.arch == "densenet":
        from train.models.densenet import BinaryDenseNet

        return BinaryDenseNet(cfg)
    return WRN(cfg)


def count_conv_weights(model: nn.Module) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, nn.Conv2d))
