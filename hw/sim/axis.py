"""Packing numpy integer vectors into AXI-stream beats and back.

FINN's convention (the one its RTL layers and drivers use): one beat carries a folded vector of
``elems`` values of ``bits`` each, element 0 in the least significant bits, negative values in
two's complement, and TDATA padded up to a multiple of 8 bits. The testbench moves a beat as
``ceil(width / 32)`` little-endian 32-bit words, so that any stream width fits.
"""

from __future__ import annotations

import numpy as np


def words_per_beat(width: int) -> int:
    return max(1, (width + 31) // 32)


def pack_words(values: np.ndarray, bits: int, width: int | None = None) -> np.ndarray:
    """(beats, elems) integers -> (beats, words) uint32, element 0 in the low bits."""
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    beats, elems = values.shape
    width = elems * bits if width is None else width
    if elems * bits > width:
        raise ValueError(f"{elems} x {bits}-bit elements do not fit a {width}-bit beat")
    nwords = words_per_beat(width)
    v = values.astype(np.int64) & ((1 << bits) - 1)  # two's complement of negatives
    bitplane = ((v[:, :, None] >> np.arange(bits)) & 1).astype(np.uint8).reshape(beats, elems * bits)
    padded = np.zeros((beats, nwords * 32), dtype=np.uint8)
    padded[:, : elems * bits] = bitplane
    return np.packbits(padded.reshape(beats, nwords, 4, 8), axis=-1, bitorder="little").reshape(
        beats, nwords * 4
    ).view("<u4").astype(np.uint32)


def unpack_words(words: np.ndarray, bits: int, elems: int, signed: bool) -> np.ndarray:
    """(beats, words) uint32 -> (beats, elems) int64, the inverse of pack_words."""
    words = np.ascontiguousarray(np.asarray(words, dtype="<u4"))
    beats = words.shape[0]
    raw = np.unpackbits(words.view(np.uint8).reshape(beats, -1), axis=-1, bitorder="little")
    raw = raw[:, : elems * bits].reshape(beats, elems, bits).astype(np.int64)
    values = (raw << np.arange(bits)).sum(axis=-1)
    if signed:
        values = np.where(values >= (1 << (bits - 1)), values - (1 << bits), values)
    return values
