"""The model options of every architecture here (the ``model:`` section of an experiment config).

One dataclass serves the WRN, ResNetE and BinaryDenseNet: ``arch`` selects the architecture
(``train.models.build_model``), the quantization keys apply to all three, and each
architecture's own keys are checked only when it is selected. It sits below the architectures
and their shared layers, which all read it, so it imports none of them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Literal

from train.quant.ste import check_ste_clip, check_ste_kind
from train.quant.weights import check_weight_quant

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
