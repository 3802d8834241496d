"""Optimizers and weight-update rules for binary-weight training (Li, De et al. 2017).

``train.optimizer``: ``sgd`` (momentum, McDonnell's recipe) or ``adam``; both use ``train.lr``
under the same schedule, and both decay conv weights only (``param_groups``).

``train.weight_update``:

- ``binaryconnect`` (BC, the default): the optimizer updates latent full-precision weights and
  the forward pass binarizes them, so many small updates accumulate until a sign flips.
- ``stochastic_rounding`` (SR): the binary conv weights are stored only in binary form. After
  every optimizer step each one is rounded at random onto its grid {-c, +c}, with
  P(+c) = clip((w + c) / (2c), 0, 1), so that E[result] = clip(w, -c, c). The optimizer (its
  momentum or Adam moments included) only ever sees the binary weights, as in Li & De's SR.
  Small updates then flip a weight with a small probability instead of accumulating, which is
  why SR loses the "greedy search" phase that lets BC settle (their Section 5).

SR needs a grid that stays fixed while the weights change: McDonnell's constant
c = sqrt(2 / fan_in) or an unscaled sign (c = 1). Scales computed from the weights (BWN's
mean |w| per channel) or learned have no such grid and are refused, as are full-precision models.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn

from common.errors import UserError
from train.quant import he_std
from train.seeding import epoch_generator

OPTIMIZERS = ("sgd", "adam")
WEIGHT_UPDATES = ("binaryconnect", "stochastic_rounding")

# model.weight_quant values whose grid {-c, +c} is a constant of the layer, as a function of
# its fan-in. A config without the key is McDonnell's he_const.
FIXED_GRIDS: dict[str, Callable[[int], float]] = {"he_const": he_std, "sign": lambda fan_in: 1.0}


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on conv weights only: not on BatchNorm, not on quantizer scales."""
    decay, no_decay = [], []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            (decay if isinstance(module, nn.Conv2d) and name == "weight" else no_decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def build_optimizer(model: nn.Module, train_cfg: dict) -> torch.optim.Optimizer:
    """The configured optimizer; the trainer sets each group's lr from the schedule every step."""
    groups = param_groups(model, train_cfg["weight_decay"])
    name = train_cfg.get("optimizer", "sgd")
    if name == "sgd":
        return torch.optim.SGD(groups, lr=train_cfg["lr"], momentum=train_cfg["momentum"])
    if name == "adam":
        # torch's Adam adds the decay to the gradient (L2), as SGD does here; momentum is unused
        return torch.optim.Adam(groups, lr=train_cfg["lr"])
    raise ValueError(f"unknown optimizer {name!r} (known: {', '.join(OPTIMIZERS)})")


def validate(cfg: dict) -> None:
    """One-line UserError for an optimizer or weight-update setting this trainer cannot run."""
    t, m = cfg["train"], cfg["model"]
    if t.get("optimizer", "sgd") not in OPTIMIZERS:
        raise UserError(f"unknown train.optimizer '{t['optimizer']}' (known: {', '.join(OPTIMIZERS)})")
    update = t.get("weight_update", "binaryconnect")
    if update not in WEIGHT_UPDATES:
        raise UserError(f"unknown train.weight_update '{update}' (known: {', '.join(WEIGHT_UPDATES)})")
    if update != "stochastic_rounding":
        return
    if not m["binary_weights"]:
        raise UserError("train.weight_update=stochastic_rounding needs binary weights; "
                        "a full-precision model has no grid to round onto")
    quant = m.get("weight_quant", "he_const")
    if quant not in FIXED_GRIDS:
        raise UserError(f"train.weight_update=stochastic_rounding needs a fixed weight grid "
                        f"(model.weight_quant: {', '.join(FIXED_GRIDS)}); '{quant}' computes or learns its scale")


def binary_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers with 1-bit quantized weights (Brevitas' weight-quantized layers at 1 bit)."""
    from brevitas.nn.quant_layer import QuantWeightBiasInputOutputLayer

    out = []
    for name, m in model.named_modules():
        if isinstance(m, QuantWeightBiasInputOutputLayer) and m.weight_quant.is_quant_enabled:
            if float(m.quant_weight().bit_width) == 1.0:
                out.append((name, m))
    return out


@torch.no_grad()
def stochastic_round_(w: torch.Tensor, c: float, gen: torch.Generator) -> torch.Tensor:
    """Replace ``w`` in place by a random element of {-c, +c} with mean clip(w, -c, c).

    The uniform numbers are drawn on the CPU from ``gen`` (one per weight, in storage order), so
    the result does not depend on the device and a run replays exactly from its seed.
    """
    u = torch.rand(w.shape, generator=gen, dtype=torch.float32).to(w.device)
    p_plus = ((w.float() + c) / (2 * c)).clamp_(0.0, 1.0)
    plus = torch.tensor(c, dtype=w.dtype, device=w.device)
    # u < p is true with probability p for u uniform on [0, 1): p = 0 never, p = 1 always, so a
    # weight already on the grid stays there when its update is zero
    w.copy_(torch.where(u < p_plus, plus, -plus))
    return w


class StochasticRounding:
    """SR onto each binary layer's fixed grid; the grid scale of each layer is fixed at build time."""

    def __init__(self, model: nn.Module, model_cfg: dict):
        grid = FIXED_GRIDS[model_cfg.get("weight_quant", "he_const")]
        self.layers = [(name, m, grid(m.weight[0].numel())) for name, m in binary_layers(model)]
        if not self.layers:
            raise UserError("train.weight_update=stochastic_rounding: the model has no binary-weight layer")

    @torch.no_grad()
    def init_on_grid(self) -> None:
        """Start from sign(w) * c: on the grid, and the same network BC's forward pass starts from.

        Deterministic (no random numbers), so the global RNG stream, and with it everything
        built after the model, is the same as in a BC run with the same seed.
        """
        for name, m, c in self.layers:
            m.weight.copy_(torch.where(m.weight >= 0, c, -c).to(m.weight.dtype))
            # the layer's quantizer must leave grid points where they are, or the grid is not its
            if not torch.equal(m.quant_weight().value, m.weight):
                raise UserError(f"train.weight_update=stochastic_rounding: layer {name}'s weight quantizer "
                                f"does not keep the grid +-{c:.6g} fixed")

    def round_all(self, gen: torch.Generator) -> None:
        for _, m, c in self.layers:
            stochastic_round_(m.weight.data, c, gen)


def rounding_generator(seed: int, epoch: int) -> torch.Generator:
    """SR's random stream for one epoch: derived from the run's per-epoch seed but separate from
    the data stream, so BC and SR runs with one seed see the same batches and augmentations."""
    return torch.Generator().manual_seed(epoch_generator(seed, epoch).initial_seed() ^ 0x5352_5352)


def weight_update_hook(model: nn.Module, cfg: dict) -> StochasticRounding | None:
    """Set the model up for ``train.weight_update``: None for BC, else the rounder (weights put on
    the grid). Call before the optimizer is built and before a checkpoint is loaded."""
    if cfg["train"].get("weight_update", "binaryconnect") != "stochastic_rounding":
        return None
    sr = StochasticRounding(model, cfg["model"])
    sr.init_on_grid()
    return sr
