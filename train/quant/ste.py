"""Straight-through estimators (STEs) of the sign function, for weights and bipolar activations.

Forward: ``sign(x) * scale`` with sign(0) = +1, as Brevitas' ``binary_sign`` and QONNX's
``BipolarQuant`` compute it, so what is trained is what exports. Backward: the derivative of
sign, zero almost everywhere, is replaced by one of

  identity    1                                      McDonnell 2018 (and BinaryConnect's weights)
  clipped     1{|x| <= t}                            BNN (Hubara et al. 2016), Bethge et al. 2019
  approxsign  (2 / t) * (1 - |x| / t) * 1{|x| <= t}  Bi-Real Net (Liu et al. 2018): with t = 1 the
                                                     derivative of its piecewise-quadratic
                                                     ApproxSign, 2 - 2|x| inside [-1, 1]

with t = ``t_clip``. The latent input's gradient is the output's gradient times that factor and is
**not** multiplied by the scale: the project's convention for the fixed He scale (see
``StraightThroughBinaryQuant``), kept for every scale so that methods differ only where they are
meant to. A scale that requires a gradient (a learned one) gets d(sign(x) * s)/ds = sign(x),
summed over the positions that share it.
"""

from __future__ import annotations

import numbers

import torch
from brevitas.function.ops import binary_sign

STE_KINDS = ("identity", "clipped", "approxsign")


def check_ste_kind(kind: str, name: str = "STE") -> None:
    """Raise ValueError (one line, naming the option ``name``) for an unknown STE."""
    if kind not in STE_KINDS:
        raise ValueError(f"{name} must be one of {', '.join(STE_KINDS)}; got {kind!r}")


def check_ste_clip(t_clip: float) -> None:
    """Raise ValueError (one line) unless the clip is a positive number."""
    if isinstance(t_clip, bool) or not isinstance(t_clip, numbers.Real) or not t_clip > 0:
        raise ValueError(f"ste_clip must be a positive number, got {t_clip!r}")


def check_ste(kind: str, t_clip: float) -> None:
    check_ste_kind(kind)
    check_ste_clip(t_clip)


def ste_derivative(x: torch.Tensor, kind: str, t_clip: float = 1.0) -> torch.Tensor:
    """The stand-in for d sign(x) / dx that the backward pass uses, elementwise."""
    check_ste_kind(kind)
    if kind == "identity":
        return torch.ones_like(x)
    inside = x.abs() <= t_clip  # the clip is inclusive, as torch.clamp's gradient is
    if kind == "clipped":
        return inside.to(x.dtype)
    t = float(t_clip)  # approxsign
    return torch.where(inside, (2.0 / t) * (1.0 - x.abs() / t), torch.zeros_like(x))


class _ScaledSign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: torch.Tensor, kind: str, t_clip: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.kind, ctx.t_clip, ctx.scale_shape = kind, t_clip, scale.shape
        return binary_sign(x) * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (x,) = ctx.saved_tensors
        grad_x = grad_scale = None
        if ctx.needs_input_grad[0]:
            # identity: the incoming gradient itself (not grad * 1), bit for bit as before
            grad_x = grad if ctx.kind == "identity" else grad * ste_derivative(x, ctx.kind, ctx.t_clip)
        if ctx.needs_input_grad[1]:
            grad_scale = (grad * binary_sign(x)).sum_to_size(ctx.scale_shape)
        return grad_x, grad_scale, None, None


def scaled_sign(x: torch.Tensor, scale: torch.Tensor, kind: str = "identity", t_clip: float = 1.0) -> torch.Tensor:
    """sign(x) * scale with the straight-through gradient ``kind`` (see the module docstring).

    ``scale`` broadcasts against x (a scalar per tensor or one value per output channel).
    """
    check_ste(kind, t_clip)
    return _ScaledSign.apply(x, scale, kind, float(t_clip))
