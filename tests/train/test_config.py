import pytest

from common.errors import UserError
from train.config import CONFIG_DIR, DEFAULT_CONFIG, load_config, parse_override


def test_default_config_is_the_hardware_ready_fashion_mnist_wrn():
    cfg = load_config()
    assert cfg["name"] == DEFAULT_CONFIG.stem
    assert cfg["data"]["dataset"] == "fashion_mnist"
    m = cfg["model"]
    assert m["binary_weights"] and m["act_bits"] == 2 and m["input_bits"] == 8 and m["shortcut"] == "conv"


def test_paper_config_is_mcdonnell_wrn_20_10():
    cfg = load_config(CONFIG_DIR / "cifar10_wrn20_10_paper.yaml")
    assert (cfg["model"]["depth"], cfg["model"]["width"]) == (20, 10)
    assert cfg["model"]["act_bits"] is None and cfg["model"]["bn_affine"] is False
    assert cfg["train"]["schedule"] == {"name": "sgdr", "t0": 2, "t_mult": 2}
    assert cfg["data"]["augment"]["cutout"] == 18


def test_overrides_and_full_precision_twin():
    cfg = load_config(overrides=["train.epochs=3", "model.width=4", "data.augment.cutout=null"],
                      full_precision=True)
    assert cfg["train"]["epochs"] == 3 and cfg["model"]["width"] == 4
    assert cfg["data"]["augment"]["cutout"] is None
    assert cfg["model"]["binary_weights"] is False and cfg["model"]["act_bits"] is None
    assert cfg["name"].endswith("-fp")


def test_parse_override_types():
    assert parse_override("a.b=3") == {"a": {"b": 3}}
    assert parse_override("x=0.5") == {"x": 0.5}
    assert parse_override("s=conv") == {"s": "conv"}


@pytest.mark.parametrize("override,match", [
    ("train.epocs=3", "unknown config key 'train.epocs'"),
    ("epochs", "not KEY=VALUE"),
    ("model.depth=10", "depth must be 6n\\+2"),
    ("model.act_bits=12", "act_bits must be 1..8"),
    ("train.schedule.name=step", "unknown schedule"),
    ("model.weight_quant=xnor", "weight_quant must be one of he_const, bwn, bwn_learned, sign; got 'xnor'"),
    ("model.weight_ste=tanh", "weight_ste must be one of identity, clipped, approxsign; got 'tanh'"),
    ("model.act_ste=null", "act_ste must be one of identity, clipped, approxsign; got None"),
    ("model.ste_clip=0", "ste_clip must be a positive number, got 0"),
    ("model.ste_clip=wide", "ste_clip must be a positive number, got 'wide'"),
])
def test_bad_overrides_give_one_clear_line(override, match):
    with pytest.raises(UserError, match=match) as e:
        load_config(overrides=[override])
    assert "\n" not in str(e.value)


def test_missing_and_broken_config_files(tmp_path):
    with pytest.raises(UserError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {depth: [8\n")
    with pytest.raises(UserError, match="not valid YAML"):
        load_config(bad)


def test_a_config_file_with_a_section_twice_is_refused(tmp_path):
    twice = tmp_path / "twice.yaml"
    twice.write_text("train: {epochs: 3}\nmodel: {width: 4}\ntrain: {lr: 0.05}\n")
    with pytest.raises(UserError, match="key 'train' appears twice in one mapping \\(line 3\\)"):
        load_config(twice)


def test_an_override_whose_value_is_not_yaml_is_one_line():
    with pytest.raises(UserError, match="override 'train.distill=\\{teacher: a': value is not valid YAML") as e:
        load_config(overrides=["train.distill={teacher: a"])
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("method", ["bwn", "bwn_learned", "sign"])
def test_each_method_config_differs_from_the_default_only_in_its_method(method):
    default = load_config(CONFIG_DIR / "fmnist_wrn8_2_w1a2.yaml")  # the config the method configs vary
    cfg = load_config(CONFIG_DIR / f"fmnist_wrn8_2_w1a2_{method}.yaml")
    assert cfg["model"]["weight_quant"] == method and default["model"]["weight_quant"] == "he_const"
    cfg["model"]["weight_quant"] = "he_const"
    assert {k: v for k, v in cfg.items() if k != "name"} == {k: v for k, v in default.items() if k != "name"}
    assert cfg["name"] == f"fmnist_wrn8_2_w1a2_{method}"
