"""A stored config from an older trainer completes with today's defaults and renamed keys."""

import pytest

from common.errors import UserError
from train.defaults import DEFAULTS, with_defaults


def test_an_old_configs_val_size_is_today_s_val_images():
    cfg = with_defaults({"data": {"dataset": "fashion_mnist", "val_size": 5000}})
    assert cfg["data"]["val_images"] == 5000 and "val_size" not in cfg["data"]
    assert cfg["train"] == DEFAULTS["train"]  # keys the old config lacked take their defaults


def test_a_fresh_unknown_key_is_still_refused():
    with pytest.raises(UserError, match="unknown config key 'data.val_fraction'"):
        with_defaults({"data": {"val_fraction": 0.1}})
