import math

import pytest

from train.schedule import lr_at, sgdr_lr, sgdr_restarts


@pytest.mark.parametrize("epoch,expected", [
    (0.0, 0.1), (0.5, 0.05), (1.0, 0.1),  # first period: 1 epoch, restart at 1
    (2.0, 0.05), (3.0, 0.1),              # second period: 2 epochs, restart at 3
    (5.0, 0.05), (7.0, 0.1), (11.0, 0.05), (15.0, 0.1), (23.0, 0.05), (31.0, 0.1),
])
def test_sgdr_t0_1_known_values(epoch, expected):
    assert sgdr_lr(epoch, 0.1, t0=1, t_mult=2) == pytest.approx(expected, abs=1e-12)


def test_sgdr_quarter_period_follows_cosine():
    # a quarter into the 4-epoch period [3, 7): 0.05 * (1 + cos(pi / 4))
    assert sgdr_lr(4.0, 0.1, 1, 2) == pytest.approx(0.05 * (1 + math.cos(math.pi / 4)))
    assert sgdr_lr(6.999, 0.1, 1, 2) < 1e-5


def test_sgdr_restart_epochs_match_the_paper():
    assert sgdr_restarts(1, 2, 63) == [1, 3, 7, 15, 31, 63]
    assert sgdr_restarts(2, 2, 126) == [2, 6, 14, 30, 62, 126]
    for r in sgdr_restarts(2, 2, 126):
        assert sgdr_lr(r, 0.1, 2, 2) == pytest.approx(0.1)
        assert sgdr_lr(r - 1e-6, 0.1, 2, 2) < 1e-6


def test_lr_at_reads_the_config_and_rejects_unknown_schedules():
    cfg = {"lr": 0.2, "schedule": {"name": "sgdr", "t0": 2, "t_mult": 2}}
    assert lr_at(1.0, cfg) == pytest.approx(0.1)
    assert lr_at(7.0, {"lr": 0.2, "schedule": {"name": "constant"}}) == 0.2
    with pytest.raises(ValueError, match="unknown schedule"):
        lr_at(0.0, {"lr": 0.1, "schedule": {"name": "step"}})
