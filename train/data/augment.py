"""Batch augmentation on tensors (runs on the training device, seeded by a torch.Generator).

Random shifts (zero-pad then crop back), horizontal flips, and cutout (DeVries & Taylor 2017):
one square per image, centred anywhere in the image and clipped at its borders, set to zero.
"""

from __future__ import annotations

import torch


def shift(x: torch.Tensor, pad: int, offsets: torch.Tensor) -> torch.Tensor:
    """Shift each image by offsets[i] = (dy, dx) in [-pad, pad], filling with zeros."""
    if pad == 0:
        return x
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (pad - offsets[:, 0])[:, None] + torch.arange(h, device=x.device)  # (N, H)
    cols = (pad - offsets[:, 1])[:, None] + torch.arange(w, device=x.device)  # (N, W)
    idx_n = torch.arange(n, device=x.device)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[idx_n, rows[:, :, None], cols[:, None, :]]  # (N, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def cutout_mask(shape: tuple[int, int, int, int], size: int, centres: torch.Tensor) -> torch.Tensor:
    """Boolean (N, 1, H, W) mask, True inside the size x size square around each centre."""
    n, _, h, w = shape
    half = size // 2
    ys = torch.arange(h, device=centres.device)[None, :]
    xs = torch.arange(w, device=centres.device)[None, :]
    in_y = (ys >= centres[:, :1] - half) & (ys < centres[:, :1] - half + size)  # (N, H)
    in_x = (xs >= centres[:, 1:] - half) & (xs < centres[:, 1:] - half + size)  # (N, W)
    return (in_y[:, :, None] & in_x[:, None, :])[:, None]


def augment_batch(x: torch.Tensor, cfg: dict, flip_ok: bool, gen: torch.Generator) -> torch.Tensor:
    """Apply the configured augmentations; all randomness comes from ``gen`` (on CPU)."""
    n, _, h, w = x.shape
    pad = int(cfg.get("shift", 0) or 0)
    if pad:
        offsets = torch.randint(-pad, pad + 1, (n, 2), generator=gen).to(x.device)
        x = shift(x, pad, offsets)
    if cfg.get("flip") and flip_ok:
        flip = (torch.rand(n, generator=gen) < 0.5).to(x.device)
        x = torch.where(flip[:, None, None, None], x.flip(3), x)
    size = int(cfg.get("cutout", 0) or 0)
    if size:
        centres = torch.stack([torch.randint(0, h, (n,), generator=gen),
                               torch.randint(0, w, (n,), generator=gen)], 1).to(x.device)
        x = x.masked_fill(cutout_mask(x.shape, size, centres), 0.0)
    return x
