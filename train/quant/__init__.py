"""Quantizers for 1-bit-weight WRNs, composed from Brevitas pieces.

McDonnell (2018) binarizes every conv weight as ``sign(w) * c`` where ``c`` is a fixed,
unlearned per-layer constant equal to the He-init standard deviation ``sqrt(2 / fan_in)``.
The latent full-precision weights are updated by SGD and the gradient passes straight
through the quantizer (d(sign(w) * c)/dw = 1, no clipping of the latent weights).

The other binary-weight methods (per-channel BWN scales, Bethge's unscaled sign) are in
``train.quant.weights``; the straight-through estimators they all share in ``train.quant.ste``.
"""

from __future__ import annotations

import math

import torch
from brevitas.core.quant import BinaryQuant
from brevitas.inject.enum import ScalingImplType
from brevitas.quant.base import SignedBinaryClampedConst
from brevitas.quant.scaled_int import Int8ActPerTensorFloat, Uint8ActPerTensorFloat, Uint8ActPerTensorFloatMaxInit
from brevitas.quant.solver import WeightQuantSolver

from train.quant.fused import FusedIntQuant
from train.quant.ste import check_ste, scaled_sign


class StraightThroughBinaryQuant(BinaryQuant):
    """Brevitas' BinaryQuant with the gradient passed straight through the whole quantizer.

    Brevitas' BinaryQuant computes ``sign_ste(w) * c``, whose gradient w.r.t. the latent weight
    is ``c * grad``: with c = sqrt(2 / fan_in) that shrinks the latent updates of wide layers
    8-16x and slows training badly (measured: 74% vs 81% Fashion-MNIST train top-1 after 200
    steps of a WRN-8-2). Here d(sign(w) * c)/dw = 1: the gradient w.r.t. the binarized
    weight becomes the gradient of the latent weight.

    ``ste_kind`` / ``ste_clip`` pick the straight-through estimator (train.quant.ste; default
    identity, the above). ``scale_grad``: whether the scale gets a gradient (a learned scale);
    a scale computed from the weights (BWN's mean |w|) is treated as a constant, as larq's
    MagnitudeAwareSign does, so no gradient flows back through the mean.
    """

    def __init__(self, scaling_impl, ste_kind: str = "identity", ste_clip: float = 1.0,
                 scale_grad: bool = False, quant_delay_steps: int = 0):
        super().__init__(scaling_impl, quant_delay_steps=quant_delay_steps)
        check_ste(ste_kind, ste_clip)
        self.ste_kind, self.ste_clip, self.scale_grad = ste_kind, float(ste_clip), bool(scale_grad)

    def forward(self, x: torch.Tensor):
        scale = self.scaling_impl(x)
        if not self.scale_grad:
            scale = scale.detach()
        y = scaled_sign(x, scale, self.ste_kind, self.ste_clip)
        y = self.delay_wrapper(x, y)
        return y, scale, self.zero_point(), self.bit_width()


class FixedScaleSignWeight(SignedBinaryClampedConst, WeightQuantSolver):
    """sign(w) * scaling_const, latent weights not clipped, identity straight-through gradient
    by default (``weight_ste_kind`` / ``weight_ste_clip`` select another).

    Brevitas' own ``SignedBinaryWeightPerTensorConst`` clamps the latent weights to the scale
    (the BNN recipe); McDonnell's recipe does not. The per-layer constant is passed as
    ``weight_scaling_const``.
    """

    tensor_quant = StraightThroughBinaryQuant
    scaling_const = 1.0


class FixedRangeUintInput(Uint8ActPerTensorFloat):
    """Unsigned input quantizer with the constant range [0, 1].

    With 8 bits the scale is exactly 1/255, so an image stored as
    uint8 pixels p and fed as p/255 maps back to the integer p: the accelerator's input is
    the raw pixel.
    """

    scaling_impl_type = ScalingImplType.CONST
    min_val = 0.0
    max_val = 1.0


class LearnedRangeReLU(Uint8ActPerTensorFloatMaxInit):
    """Unsigned k-bit ReLU quantizer with a learned range (PACT-like), initialised to ``max_val``.

    Brevitas' default QuantReLU starts from the 99.999th percentile of the first 300 batches;
    after BatchNorm that is ~4 standard deviations, which at 2 bits sends most activations to
    zero and slows early training badly. A small initial range that the range parameter then
    learns avoids that and skips the (slow) statistics phase.
    """

    int_quant = FusedIntQuant  # Brevitas' IntQuant, compiled for training (train.quant.fused)


def relu_max_init(bits: int) -> float:
    """Initial clip of a k-bit ReLU after BatchNorm (unit variance): wider for more levels."""
    return min(1.0 + 0.5 * (bits - 1), 4.0)


class SignedResidualQuant(Int8ActPerTensorFloat):
    """Signed quantizer on both inputs of a residual add (and on the class scores).

    Learned per-tensor scale, initialised from the 99.9th percentile of |x| over the first
    100 batches: about 3 standard deviations, a sensible clip for 4 to 8 bits.
    """

    high_percentile_q = 99.9
    collect_stats_steps = 100
    int_quant = FusedIntQuant  # Brevitas' IntQuant, compiled for training (train.quant.fused)


def he_std(fan_in: int) -> float:
    """The He-init standard deviation sqrt(2 / fan_in), McDonnell's fixed per-layer scale."""
    if fan_in <= 0:
        raise ValueError(f"fan_in must be positive, got {fan_in}")
    return math.sqrt(2.0 / fan_in)
