"""BWNH's per-layer solver: binary weights as inner-product-preserving hashing.

Hu, Wang & Cheng (AAAI 2018), "From Hashing to CNNs: Training Binary Weight Networks via
Hashing". For one layer with full-precision weights ``W`` (fan_in x C, one column per output
channel) and the layer's inputs ``X`` (fan_in x N, e.g. the im2col patches of a batch of real
images), find ``B`` in {-1, +1}^(fan_in x C) and a diagonal ``A = diag(a)`` minimising

    L(B, A) = || X^T W - X^T B A ||_F^2,

i.e. the binary layer should compute the same inner products with real inputs as the
full-precision one. With ``S = X X^T`` (fan_in x fan_in) the loss splits over the channels,

    L = sum_j  l_j(a_j, b_j),   l_j(a, b) = (w_j - a b)^T S (w_j - a b)
                                          = w_j^T S w_j - 2 a b^T S w_j + a^2 b^T S b,

so only ``S`` is needed, never ``X`` itself, and every channel is an independent problem.
Each channel alternates two exact minimisations, so its loss never increases:

* **a given b** (a quadratic in a): dl/da = 0 gives the closed form
  ``a = (b^T S w) / (b^T S b)``; ``a = 0`` when ``b^T S b = 0``.
* **b given a**, discrete cyclic coordinate descent (DCC): bit i enters l only through
  ``-2 a b_i [ (S w)_i - a sum_{k != i} S_ik b_k ]`` (b_i^2 = 1 makes the S_ii term a constant),
  so with the other bits fixed its optimal value is ``b_i = sign(a c_i)``,
  ``c_i = (S w)_i - a sum_{k != i} S_ik b_k``. Sweeping i = 1..fan_in, a bit changes only
  when that strictly lowers l (by 4 |a c_i|); sweeps repeat until no bit changes.

It starts from ``b = sign(w)`` with its optimal ``a``, which is already no worse than
XNOR-Net's ``sign(w) * mean|w|`` (same b, the best a), and stops when DCC changes no bit of
any channel (then ``a`` is optimal for ``b`` as well: a fixed point of both steps). ``(a, b)``
and ``(-a, -b)`` give the same loss; ``a`` is kept >= 0 so the scales can fold into a
following BatchNorm or threshold as positive factors.

Vectorised over channels: updating bit i of every channel at once is updating row i of B,
which needs row i of ``G = S B``; G is kept up to date column by column as bits flip.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class HashResult:
    B: np.ndarray  # (fan_in, C), entries -1.0 / +1.0
    a: np.ndarray  # (C,), >= 0
    loss: np.ndarray  # (C,) final per-channel loss l_j
    history: list = field(default_factory=list)  # per-channel loss after init and each A-update
    iterations: int = 0  # alternations of (DCC on B, closed-form A)
    sweeps: int = 0  # DCC sweeps over all bits, in total
    converged: bool = False  # False: stopped at max_iters / max_sweeps


def sign(w: np.ndarray) -> np.ndarray:
    """sign with sign(0) = +1, so every weight gets a bit."""
    return np.where(w >= 0, 1.0, -1.0)


def channel_loss(W: np.ndarray, S: np.ndarray, B: np.ndarray, a: np.ndarray) -> np.ndarray:
    """l_j = (w_j - a_j b_j)^T S (w_j - a_j b_j) for every channel j."""
    R = W - B * a
    return np.einsum("ij,ij->j", R, S @ R)


def optimal_scale(W: np.ndarray, S: np.ndarray, B: np.ndarray) -> np.ndarray:
    """The closed-form a_j = (b_j^T S w_j) / (b_j^T S b_j) (0 where b_j^T S b_j = 0)."""
    num = np.einsum("ij,ij->j", B, S @ W)
    den = np.einsum("ij,ij->j", B, S @ B)
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


def mean_abs_baseline(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """XNOR-Net / BWN's binarization: B = sign(W), a_j = mean_i |W_ij|."""
    return sign(W), np.abs(W).mean(axis=0)


def _dcc(S: np.ndarray, SW: np.ndarray, B: np.ndarray, G: np.ndarray, a: np.ndarray,
         max_sweeps: int) -> tuple[int, bool]:
    """DCC on every channel's bits with ``a`` fixed; B and G = S B updated in place.

    Returns (sweeps done, whether the last sweep changed no bit).
    """
    diag = np.diag(S)
    # A flip must beat rounding noise in G, or two nearly tied bits could flip back and forth.
    tol = 1e-10 * (np.abs(SW).max() + np.abs(a).max() * np.abs(S).sum(axis=1).max() + 1e-300)
    for sweep in range(1, max_sweeps + 1):
        changed = False
        for i in range(S.shape[0]):
            c = SW[i] - a * (G[i] - diag[i] * B[i])
            gain = a * c  # the loss falls by 4 |gain| if bit i takes sign(gain)
            flip = (np.abs(gain) > tol) & (np.sign(gain) != B[i])
            if flip.any():
                cols = np.nonzero(flip)[0]
                G[:, cols] -= 2.0 * S[:, [i]] * B[i, cols]  # b_i: s -> -s changes S b by -2 s S[:, i]
                B[i, cols] = -B[i, cols]
                changed = True
        if not changed:
            return sweep, True
    return max_sweeps, False


def hash_layer(W: np.ndarray, S: np.ndarray, max_iters: int = 50, max_sweeps: int = 100) -> HashResult:
    """Minimise ||X^T W - X^T B diag(a)||_F^2 given S = X X^T; see the module docstring.

    W: (fan_in, C) full-precision weights; S: (fan_in, fan_in) symmetric positive semidefinite.
    """
    W = np.asarray(W, dtype=np.float64)
    S = np.asarray(S, dtype=np.float64)
    if W.ndim != 2 or S.shape != (W.shape[0], W.shape[0]):
        raise ValueError(f"need W (fan_in, C) and S (fan_in, fan_in); got W {W.shape}, S {S.shape}")
    SW = S @ W
    B = sign(W)
    G = np.empty_like(B)

    def update_scale():
        a = optimal_scale(W, S, B)
        neg = a < 0  # (-a, -b) has the same loss: keep a >= 0
        B[:, neg], a[neg] = -B[:, neg], -a[neg]
        G[:] = S @ B  # afresh: DCC's incremental updates must not accumulate rounding
        return a

    a = update_scale()
    res = HashResult(B, a, channel_loss(W, S, B, a))
    res.history.append(res.loss)
    for it in range(1, max_iters + 1):
        sweeps, dcc_converged = _dcc(S, SW, B, G, a, max_sweeps)
        res.sweeps += sweeps
        res.iterations = it
        a = update_scale()
        res.a, res.loss = a, channel_loss(W, S, B, a)
        res.history.append(res.loss)
        if dcc_converged and sweeps == 1:  # no bit moved: a was already optimal for B
            res.converged = True
            break
    return res
