"""Where a run's randomness comes from: one generator per epoch, seeded with (seed, epoch).

A run resumed from the checkpoint of epoch e then replays exactly what an uninterrupted run
would have done. The trainer draws the epoch's batch order and augmentations from it, and the
stochastic-rounding weight update (train/optim.py) derives its own stream from it.
"""

from __future__ import annotations

import torch


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)
