"""The binary-weight methods selectable by ``model.weight_quant``, and the bipolar activation.

Every method binarizes a conv's latent weights w as ``sign(w) * a``; they differ in the scale a:

  he_const     a = sqrt(2 / fan_in), one constant per layer (McDonnell 2018; the default)
  bwn          a_c = mean |w_c| over output channel c, recomputed from the latent weights at every
               step and treated as a constant by the gradient (BWN / XNOR-Net, Rastegari et al.
               2016; larq's MagnitudeAwareSign)
  bwn_learned  a_c a learned parameter per output channel, initialised to mean |w_c| at the first
               forward pass (the learned-scale variant of XNOR-Net / BWN)
  sign         a = 1: the weights are exactly +-1 (Bethge et al. 2019: with BatchNorm after every
               conv a scale is redundant)

All are Brevitas weight quantizers on ``StraightThroughBinaryQuant``, so Brevitas exports each
as a QONNX ``BipolarQuant`` node whose scale is the per-tensor constant or the per-channel
vector; FINN folds that scale out of the weights into a Mul after the conv, and streamlining
moves it into the following thresholds (a_c > 0), so the hardware sees +-1 weights only.
"""

from __future__ import annotations

from brevitas.core.scaling import ScalingPerOutputType
from brevitas.inject.enum import RestrictValueType, ScalingImplType, StatsOp
from brevitas.quant import SignedBinaryActPerTensorConst

from train.quant import FixedScaleSignWeight, StraightThroughBinaryQuant, he_std

WEIGHT_QUANTS = ("he_const", "bwn", "bwn_learned", "sign")


class MeanAbsSignWeight(FixedScaleSignWeight):
    """bwn: sign(w) * mean |w| per output channel, recomputed every forward pass."""

    scaling_impl_type = ScalingImplType.STATS
    scaling_stats_op = StatsOp.AVE  # Brevitas' AVE statistic is the mean of |w|
    scaling_per_output_type = ScalingPerOutputType.CHANNEL


class LearnedMeanAbsSignWeight(MeanAbsSignWeight):
    """bwn_learned: sign(w) * a_c with a_c learned, initialised to mean |w_c| (Brevitas
    PARAMETER_FROM_STATS: the statistic of the first forward pass becomes the parameter).

    The parameter is kept in the log domain (Brevitas LOG_FP: a_c = 2 ** p_c) so that a_c stays
    positive: a negative scale would flip a channel's weights and could not be folded into the
    following thresholds as a positive factor.
    """

    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS
    restrict_scaling_type = RestrictValueType.LOG_FP
    scale_grad = True


class BipolarSignAct(SignedBinaryActPerTensorConst):
    """1-bit activations sign(x) in {-1, +1} with a selectable STE (``ste_kind``, ``ste_clip``).

    Brevitas' SignedBinaryActPerTensorConst clamps x to [-1, 1] before its sign STE, i.e. the
    clipped STE with t = 1; that stays the default. The scale is the constant 1, so Brevitas
    exports the same BipolarQuant node as before.
    """

    tensor_quant = StraightThroughBinaryQuant
    ste_kind = "clipped"
    ste_clip = 1.0


def check_weight_quant(method: str) -> None:
    if method not in WEIGHT_QUANTS:
        raise ValueError(f"weight_quant must be one of {', '.join(WEIGHT_QUANTS)}; got {method!r}")


def weight_quant_kwargs(method: str, fan_in: int, ste_kind: str = "identity", ste_clip: float = 1.0) -> dict:
    """Keyword arguments of a Brevitas QuantConv2d that binarize its weights with ``method``."""
    check_weight_quant(method)
    kwargs = {"weight_ste_kind": ste_kind, "weight_ste_clip": float(ste_clip)}
    if method == "he_const":
        return {"weight_quant": FixedScaleSignWeight, "weight_scaling_const": he_std(fan_in), **kwargs}
    if method == "sign":
        return {"weight_quant": FixedScaleSignWeight, "weight_scaling_const": 1.0, **kwargs}
    if method == "bwn":
        return {"weight_quant": MeanAbsSignWeight, **kwargs}
    return {"weight_quant": LearnedMeanAbsSignWeight, **kwargs}


def bipolar_act_kwargs(ste_kind: str = "clipped", ste_clip: float = 1.0) -> dict:
    """Keyword arguments of a Brevitas QuantIdentity for bipolar (1-bit) activations."""
    # activation quantizers take their options unprefixed (Brevitas' act_kwargs_prefix is '')
    return {"act_quant": BipolarSignAct, "ste_kind": ste_kind, "ste_clip": float(ste_clip)}


__all__ = ["WEIGHT_QUANTS", "MeanAbsSignWeight", "LearnedMeanAbsSignWeight", "BipolarSignAct",
           "StraightThroughBinaryQuant", "check_weight_quant", "weight_quant_kwargs", "bipolar_act_kwargs"]
