import numpy as np
import pytest
import torch

from train.data.augment import augment_batch, cutout_mask, shift


def reference_cutout(img: np.ndarray, size: int, cy: int, cx: int) -> np.ndarray:
    """DeVries & Taylor's cutout, written out with explicit clipping."""
    h, w = img.shape[-2:]
    y0, x0 = max(cy - size // 2, 0), max(cx - size // 2, 0)
    y1, x1 = min(cy - size // 2 + size, h), min(cx - size // 2 + size, w)
    out = img.copy()
    out[..., y0:y1, x0:x1] = 0
    return out


@pytest.mark.parametrize("size,centre", [(10, (14, 14)), (10, (0, 0)), (10, (27, 3)), (7, (5, 26)), (18, (20, 9))])
def test_cutout_masks_the_right_area(size, centre):
    img = np.random.default_rng(0).uniform(0.1, 1.0, (1, 2, 28, 28)).astype(np.float32)
    mask = cutout_mask(img.shape, size, torch.tensor([centre]))
    got = torch.from_numpy(img).masked_fill(mask, 0.0).numpy()
    np.testing.assert_array_equal(got, reference_cutout(img, size, *centre))


def test_shift_matches_a_zero_filled_roll():
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6) + 1
    offsets = torch.tensor([[1, -2], [-1, 0]])
    got = shift(x, 2, offsets).numpy()
    for i, (dy, dx) in enumerate(offsets.tolist()):
        ref = np.zeros((6, 6), np.float32)
        src = x[i, 0].numpy()
        for r in range(6):
            for c in range(6):
                if 0 <= r - dy < 6 and 0 <= c - dx < 6:
                    ref[r, c] = src[r - dy, c - dx]
        np.testing.assert_array_equal(got[i, 0], ref)


def test_augment_is_deterministic_for_a_seed_and_flips_only_when_allowed():
    x = torch.rand(8, 1, 12, 12)
    cfg = {"shift": 2, "flip": True, "cutout": 4}
    a = augment_batch(x, cfg, True, torch.Generator().manual_seed(5))
    b = augment_batch(x, cfg, True, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    flip_only = {"shift": 0, "flip": True, "cutout": 0}
    assert torch.equal(augment_batch(x, flip_only, False, torch.Generator().manual_seed(1)), x)
    flipped = augment_batch(x, flip_only, True, torch.Generator().manual_seed(1))
    for i in range(8):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(2))
    assert not torch.equal(flipped, x)
