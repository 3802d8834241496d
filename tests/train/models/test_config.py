"""ModelConfig (train/models/config.py): each architecture's options are checked, and only its own."""

import pytest

from train.models.config import ModelConfig


def test_defaults_are_mcdonnell_weights_and_brevitas_clipped_bipolar_activations():
    cfg = ModelConfig()
    assert (cfg.weight_quant, cfg.weight_ste, cfg.act_ste, cfg.ste_clip) == ("he_const", "identity", "clipped", 1.0)


@pytest.mark.parametrize("bad", [dict(depth=10), dict(depth=4), dict(width=0), dict(act_bits=9),
                                 dict(shortcut="max"), dict(colour="red"), dict(weight_quant="xnor"),
                                 dict(weight_ste="tanh"), dict(act_ste="swish"), dict(ste_clip=0),
                                 dict(ste_clip="1.0")])
def test_bad_model_config_is_refused(bad):
    with pytest.raises((ValueError, TypeError)):
        ModelConfig.from_dict({"depth": 8, "width": 1, **bad})


@pytest.mark.parametrize("bad,match", [
    (dict(arch="vgg"), "arch must be one of"), (dict(base_channels=0), "base_channels"),
    (dict(stage_blocks=[]), "stage_blocks"), (dict(stage_blocks=[2, 0]), "stage_blocks"),
    (dict(stage_blocks="2,2"), "stage_blocks"), (dict(stage_blocks=[2.5]), "stage_blocks"),
    (dict(fp_downsample="yes"), "fp_downsample"), (dict(arch="densenet", fp_downsample=True), "resnete only"),
    (dict(arch="wrn", fp_downsample=True), "resnete only")])
def test_bad_resnete_config_is_refused_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig.from_dict({"arch": "resnete", **bad})


def test_wrn_keys_do_not_constrain_resnete():
    cfg = ModelConfig.from_dict(dict(arch="resnete", depth=10, width=0))  # would be refused for the WRN
    assert cfg.stage_blocks == [2, 2, 2, 2] and cfg.dense_layers == [6, 6, 6, 5]


@pytest.mark.parametrize("bad,match", [
    (dict(growth_rate=0), "growth_rate"), (dict(dense_layers=[]), "dense_layers"),
    (dict(dense_layers=[3, -1]), "dense_layers"), (dict(reduction=0.5), "reduction"),
    (dict(reduction="2"), "reduction"), (dict(dense_layers=[2, 2, 2], reduction=[2.0]), "one divisor per transition"),
    (dict(base_channels=-3), "base_channels"), (dict(growth_rate=True), "growth_rate")])
def test_bad_densenet_config_is_refused_with_a_clear_message(bad, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig.from_dict({"arch": "densenet", **bad})
