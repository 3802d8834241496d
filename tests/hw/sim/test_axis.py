"""Beat packing against a plain Python-int reference of FINN's order (element 0 in the low bits)."""

import numpy as np
import pytest

from hw.sim.axis import pack_words, unpack_words


def reference_pack(row, bits, nwords):
    word = 0
    for i, v in enumerate(row):
        word |= (int(v) & ((1 << bits) - 1)) << (i * bits)
    return [(word >> (32 * k)) & 0xFFFFFFFF for k in range(nwords)]


@pytest.mark.parametrize("bits,elems,signed", [(1, 1, False), (2, 36, False), (4, 16, True), (8, 9, True), (14, 10, True), (32, 3, True)])
def test_pack_matches_python_ints_and_round_trips(bits, elems, signed):
    rng = np.random.default_rng(bits * 100 + elems)
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    x = rng.integers(lo, hi, (50, elems))
    width = ((elems * bits + 7) // 8) * 8
    words = pack_words(x, bits, width)
    nwords = (width + 31) // 32
    assert words.shape == (50, nwords) and words.dtype == np.uint32
    for row, packed in zip(x, words):
        assert list(packed) == reference_pack(row, bits, nwords)
    assert np.array_equal(unpack_words(words, bits, elems, signed), x)


def test_pack_refuses_a_beat_that_does_not_fit():
    with pytest.raises(ValueError, match="do not fit"):
        pack_words(np.zeros((1, 5)), 8, 32)
