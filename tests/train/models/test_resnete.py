"""ResNetE (Bethge et al. 2019): structure, weight counts computed from the paper's definition,
the downsampling shortcut against an independent torch computation, W1A1, and the QONNX export
check on tiny instances. Its options are checked in tests/train/models/test_config.py."""

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity

from tests.fixtures import BETHGE_HW, export_and_check, pattern_images, warmed_bethge
from train.models import ResNetE, build_model, count_conv_weights


def expected_conv_weights(c, stage_blocks, cin=1, classes=10):
    """Independent count: stem 3x3, per stage 2*blocks 3x3 convs (the first of stages > 0 from
    the previous width, stride 2, plus a 1x1 shortcut conv), head 1x1 to the classes."""
    total, prev = 9 * cin * c, c
    for s, blocks in enumerate(stage_blocks):
        w = c * 2 ** s
        for i in range(2 * blocks):
            total += 9 * prev * w + (prev * w if prev != w else 0)
            prev = w
    return total + prev * classes


@pytest.mark.parametrize("c,stages", [(24, [2, 2, 2]), (8, [1, 1]), (4, [2, 2, 2, 2]), (6, [3])])
def test_structure_and_weight_count(c, stages):
    m = build_model(dict(arch="resnete", base_channels=c, stage_blocks=stages, in_channels=1, num_classes=10))
    assert isinstance(m, ResNetE)
    assert count_conv_weights(m) == expected_conv_weights(c, stages)
    units = list(m.body)
    assert len(units) == 2 * sum(stages)  # a shortcut around every conv: one unit per 3x3 conv
    strides = [u.conv.stride[0] for u in units]
    first = np.cumsum([0] + [2 * b for b in stages])[1:-1]  # first unit of every stage after the first
    assert strides == [2 if i in first else 1 for i in range(len(units))]
    assert [u.downsample for u in units] == [s == 2 for s in strides]
    for u in units:
        if u.downsample:
            assert u.shortcut_conv.kernel_size == (1, 1) and u.shortcut_conv.stride == (1, 1)
    assert m(torch.rand(2, 1, 16, 16)).shape == (2, 10)


def test_the_configured_hardware_model_has_the_readme_size():
    m = build_model(dict(arch="resnete", base_channels=24, stage_blocks=[2, 2, 2], **BETHGE_HW))
    assert count_conv_weights(m) == 390_552
    assert m.cfg.describe().startswith("ResNetE-14")


def test_downsampling_unit_is_avgpool_1x1_conv_plus_strided_conv():
    """The unit's output against its definition, computed here with torch.nn.functional from the
    unit's binarized weights and BN statistics (float model: act is ReLU; no quantizers)."""
    torch.manual_seed(1)
    m = build_model(dict(arch="resnete", base_channels=4, stage_blocks=[1, 1], in_channels=1,
                         num_classes=10, weight_quant="sign"))
    unit = m.body[2]
    assert unit.downsample
    unit.train()
    with torch.no_grad():
        unit(torch.randn(8, 4, 6, 6))  # BN statistics away from 0 / 1
    unit.eval()
    x = torch.randn(3, 4, 6, 6)

    def bn(t, b):
        return (t - b.running_mean[None, :, None, None]) / torch.sqrt(b.running_var[None, :, None, None] + b.eps)

    w = torch.sign(unit.conv.weight.detach())
    w[w == 0] = 1
    ws = torch.sign(unit.shortcut_conv.weight.detach())
    ws[ws == 0] = 1
    main = bn(F.conv2d(F.relu(x), w, stride=2, padding=1), unit.bn)
    pooled = x.reshape(3, 4, 3, 2, 3, 2).mean(dim=(3, 5))  # 2x2 / 2 average, by reshaping
    short = bn(F.conv2d(pooled, ws), unit.shortcut_bn)
    with torch.no_grad():
        torch.testing.assert_close(unit(x), main + short, rtol=1e-5, atol=1e-5)


def test_w1a1_activations_are_bipolar_and_the_stream_integer():
    m = warmed_bethge("resnete")
    acts, sums = [], []
    for mod in m.modules():
        if isinstance(mod, QuantIdentity) and mod.act_quant.bit_width() == 1:
            mod.register_forward_hook(lambda mod, i, o: acts.append(o))
    for u in m.body:
        u.register_forward_hook(lambda mod, i, o: sums.append((mod, o)))
    x, _ = pattern_images(4, 12, 10, 3)
    with torch.no_grad():
        m(torch.from_numpy(x[:, None]).float() / 255)
    assert len(acts) == len(m.body) + 1  # one sign per unit, one in the head
    assert all(set(torch.unique(a).tolist()) <= {-1.0, 1.0} for a in acts)
    for unit, out in sums:  # both add inputs on one scale: the sum is an integer on it
        q = out / unit.add_quant.act_quant.scale()
        assert (q - q.round()).abs().max() < 1e-3
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert all(isinstance(c, QuantConv2d) for c in convs)


def test_fp_downsample_keeps_the_shortcut_conv_in_float():
    m = build_model(dict(arch="resnete", base_channels=4, stage_blocks=[1, 1, 1], fp_downsample=True, **BETHGE_HW))
    float_convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d) and not isinstance(mod, QuantConv2d)]
    assert float_convs == [u.shortcut_conv for u in m.body if u.downsample] and len(float_convs) == 2
    assert [c for c, _ in m.full_precision_convs()] == float_convs


def test_odd_feature_map_at_a_downsampling_unit_is_refused():
    m = build_model(dict(arch="resnete", base_channels=4, stage_blocks=[1, 1], in_channels=1, num_classes=10))
    with pytest.raises(ValueError, match="even feature map"):
        m(torch.rand(1, 1, 7, 7))


@pytest.mark.parametrize("cfg", [dict(), dict(weight_quant="he_const", act_ste="approxsign"),
                                 dict(act_bits=2, weight_quant="bwn_learned")])
def test_export_check_passes(tmp_path, cfg):
    cfg = dict(cfg)
    m = warmed_bethge("resnete", weight_quant=cfg.pop("weight_quant", "sign"), **cfg)
    r = export_and_check(m, tmp_path)
    n_convs = sum(isinstance(mod, nn.Conv2d) for mod in m.modules())
    assert r["passed"], r
    assert r["conv_layers"] == r["conv_layers_two_values"] == n_convs and not r["full_precision_convs"]
    assert r["integers_equal"] == r["labels_equal"] == 8


def test_export_check_lists_the_fp_downsample_conv_and_checks_the_rest(tmp_path):
    m = warmed_bethge("resnete", weight_quant="sign", fp_downsample=True)
    r = export_and_check(m, tmp_path)
    assert r["passed"], r
    assert len(r["full_precision_convs"]) == 1 and r["full_precision_convs"][0]["shape"] == [16, 8, 1, 1]
    assert r["conv_layers"] == r["conv_layers_two_values"] == 6  # 7 convs, the float one not counted
