"""Block RAM geometry of Xilinx 7-series / UltraScale parts: how many BRAM36 a memory of a given
shape takes, counted the way yosys and Vivado map it (BRAM18 halves, each one of the aspect
ratios below, read and write port as wide as the data)."""

from __future__ import annotations

import math

# (deepest words, bits per word) of one BRAM18 in simple dual-port mode
BRAM18_SHAPES = ((512, 36), (1024, 18), (2048, 9), (4096, 4), (8192, 2), (16384, 1))


def bram36(words: int, width: int) -> float:
    """BRAM36 of a ``words`` x ``width``-bit memory: BRAM18 halves side by side for the width
    at the aspect ratio its depth needs, 16K x 1 columns stacked beyond 16K words."""
    words = max(1, words)
    for deepest, bits in BRAM18_SHAPES:
        if words <= deepest:
            return math.ceil(width / bits) / 2
    return math.ceil(words / 16384) * width / 2
