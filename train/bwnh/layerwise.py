"""BWNH on a whole network: layer by layer from the input, on real images.

Each conv ``W`` (out, cin, kh, kw) is the matrix ``W`` (fan_in, out) of ``hashing`` with
fan_in = cin * kh * kw in the order of ``weight.reshape(out, -1)``, which is also the order of
``F.unfold``'s patches; ``S = X X^T`` sums the unfolded input patches of a batch of images.
The paper's point: the inputs ``X`` of layer l come from the network whose layers below l are
already binarized, so each layer also compensates the errors of the layers under it
(``inputs="binarized"``; ``"full_precision"`` takes every X from the original network instead).

The binarized network here is the full-precision module with each conv's weight replaced by
``B * a`` (per output channel): it computes exactly what a binary-weight layer with per-channel
scales computes, and its BatchNorm statistics are the full-precision ones.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from train.bwnh.hashing import channel_loss, hash_layer, mean_abs_baseline

Inputs = Literal["binarized", "full_precision"]


@dataclass
class LayerResult:
    name: str
    shape: tuple  # conv weight shape (out, cin, kh, kw)
    B: np.ndarray  # (fan_in, out) of -1 / +1
    a: np.ndarray  # (out,)
    wsw: np.ndarray  # (out,) w_j^T S w_j: the energy of the layer's full-precision outputs
    loss_bwnh: np.ndarray  # (out,) ||X^T w_j - X^T b_j a_j||^2
    loss_baseline: np.ndarray  # (out,) the same for sign(w_j) * mean|w_j|, on the same X
    centered: dict  # the three above with every output's mean over the patches removed
    iterations: int
    converged: bool
    seconds: float

    @property
    def rel_error_bwnh(self) -> float:
        """||X^T W - X^T B A||_F^2 / ||X^T W||_F^2 over the whole layer."""
        return float(self.loss_bwnh.sum() / self.wsw.sum())

    @property
    def rel_error_baseline(self) -> float:
        return float(self.loss_baseline.sum() / self.wsw.sum())

    def rel_error_centered(self, which: str) -> float:
        """Relative error of the outputs' deviations from their means (which BatchNorm keeps)."""
        return float(self.centered[which].sum() / self.centered["wsw"].sum())

    def weight(self) -> torch.Tensor:
        """B * a as a conv weight (out, cin, kh, kw)."""
        return torch.from_numpy((self.B * self.a).T.copy()).float().reshape(self.shape)

    def summary(self) -> dict:
        return {"layer": self.name, "shape": list(self.shape), "fan_in": int(self.B.shape[0]),
                "rel_error_bwnh": self.rel_error_bwnh, "rel_error_sign_mean": self.rel_error_baseline,
                "rel_error_centered_bwnh": self.rel_error_centered("bwnh"),
                "rel_error_centered_sign_mean": self.rel_error_centered("sign_mean"),
                "channels_bwnh_lower": int((self.loss_bwnh < self.loss_baseline).sum()),
                "channels": int(len(self.a)), "iterations": self.iterations,
                "converged": self.converged, "seconds": round(self.seconds, 3)}


def conv_layers(model: nn.Module, example: torch.Tensor) -> list[str]:
    """Names of the model's convs in the order a forward pass runs them."""
    order: list[str] = []
    hooks = [m.register_forward_pre_hook(lambda m, inp, n=n: order.append(n))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for h in hooks:
            h.remove()
    return list(dict.fromkeys(order))


class _Stop(Exception):
    """Raised from a hook once the layer's input is seen: the layers above are not needed."""


@dataclass
class Gram:
    """S = sum of x x^T over every input patch x of a conv, the patches' sum and their number."""

    S: np.ndarray  # (fan_in, fan_in) float64
    total: np.ndarray  # (fan_in,)
    count: int

    def centered(self) -> np.ndarray:
        """S of the patches minus their mean: sum (x - m)(x - m)^T = S - count m m^T."""
        m = self.total / self.count
        return self.S - self.count * np.outer(m, m)


@torch.no_grad()
def input_gram(model: nn.Module, name: str, images: torch.Tensor, batch_size: int = 100) -> Gram:
    """The Gram matrix of conv ``name``'s input patches on ``images`` (uint8 N, C, H, W).

    Images are scaled to [0, 1] as the trainer does; the model runs in eval mode (BatchNorm on
    its running statistics, as at test time).
    """
    conv = model.get_submodule(name)
    fan_in = conv.weight[0].numel()
    S = torch.zeros(fan_in, fan_in, dtype=torch.float64)
    total = torch.zeros(fan_in, dtype=torch.float64)
    count = 0

    def hook(m, inp):
        nonlocal count
        x = inp[0]
        cols = F.unfold(x, m.kernel_size, m.dilation, m.padding, m.stride)  # (n, fan_in, L)
        cols = cols.transpose(0, 1).reshape(fan_in, -1).double()
        S.add_(cols @ cols.T)
        total.add_(cols.sum(dim=1))
        count += cols.shape[1]
        raise _Stop

    handle = conv.register_forward_pre_hook(hook)
    model.eval()
    try:
        for i in range(0, len(images), batch_size):
            try:
                model(images[i:i + batch_size].float() / 255.0)
            except _Stop:
                pass
    finally:
        handle.remove()
    return Gram(S.numpy(), total.numpy(), count)


def binarize(model: nn.Module, images: torch.Tensor, inputs: Inputs = "binarized",
             batch_size: int = 100, max_iters: int = 50, log=None) -> list[LayerResult]:
    """BWNH on every conv of ``model``, bottom up; the model's conv weights become B * a in place."""
    if inputs not in ("binarized", "full_precision"):
        raise ValueError(f"inputs must be 'binarized' or 'full_precision', got {inputs!r}")
    source = model if inputs == "binarized" else copy.deepcopy(model)
    results = []
    for name in conv_layers(model, images[:1].float() / 255.0):
        t0 = time.time()
        conv = model.get_submodule(name)
        shape = tuple(conv.weight.shape)
        W = conv.weight.detach().double().reshape(shape[0], -1).T.numpy()
        gram = input_gram(source, name, images, batch_size)
        S, Sc = gram.S, gram.centered()
        res = hash_layer(W, S, max_iters=max_iters)
        B0, a0 = mean_abs_baseline(W)
        centered = {"wsw": np.einsum("ij,ij->j", W, Sc @ W), "bwnh": channel_loss(W, Sc, res.B, res.a),
                    "sign_mean": channel_loss(W, Sc, B0, a0)}
        r = LayerResult(name, shape, res.B, res.a, np.einsum("ij,ij->j", W, S @ W), res.loss,
                        channel_loss(W, S, B0, a0), centered, res.iterations, res.converged,
                        time.time() - t0)
        with torch.no_grad():
            conv.weight.copy_(r.weight())
        results.append(r)
        if log:
            log(f"{name}: {shape}, relative error BWNH {r.rel_error_bwnh:.4f} vs sign*mean|W| "
                f"{r.rel_error_baseline:.4f} ({r.iterations} iterations, {r.seconds:.1f} s)")
    return results


@torch.no_grad()
def binarize_mean_abs(model: nn.Module) -> nn.Module:
    """The baseline network: every conv weight becomes sign(w_j) * mean|w_j| in place."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            W = m.weight.double().reshape(m.weight.shape[0], -1).T.numpy()
            B, a = mean_abs_baseline(W)
            m.weight.copy_(torch.from_numpy((B * a).T.copy()).reshape(m.weight.shape))
    return model
