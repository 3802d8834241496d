"""Learning-rate schedules, as pure functions of the (fractional) epoch."""

from __future__ import annotations

import math


def sgdr_lr(epoch: float, lr0: float, t0: float, t_mult: float = 2.0, lr_min: float = 0.0) -> float:
    """Cosine annealing with warm restarts (Loshchilov & Hutter 2017), as McDonnell uses it.

    The first period lasts ``t0`` epochs and each next one ``t_mult`` times longer, so with
    t0=1, t_mult=2 the learning rate restarts at epochs 1, 3, 7, 15, 31, 63, ...
    """
    if epoch < 0:
        raise ValueError(f"epoch must be >= 0, got {epoch}")
    start, period = 0.0, float(t0)
    while epoch >= start + period:
        start += period
        period *= t_mult
    frac = (epoch - start) / period
    return lr_min + 0.5 * (lr0 - lr_min) * (1.0 + math.cos(math.pi * frac))


def sgdr_restarts(t0: float, t_mult: float, until: float) -> list[float]:
    """Epochs at which the learning rate restarts, up to ``until`` inclusive."""
    out, at, period = [], float(t0), float(t0)
    while at <= until:
        out.append(at)
        period *= t_mult
        at += period
    return out


def lr_at(epoch: float, train_cfg: dict) -> float:
    sched = train_cfg["schedule"]
    if sched["name"] == "sgdr":
        return sgdr_lr(epoch, train_cfg["lr"], sched["t0"], sched["t_mult"], sched.get("lr_min", 0.0))
    if sched["name"] == "constant":
        return train_cfg["lr"]
    raise ValueError(f"unknown schedule {sched['name']!r} (known: sgdr, constant)")
