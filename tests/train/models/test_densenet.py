"""BinaryDenseNet (Bethge et al. 2019): channel bookkeeping and weight counts computed from the
paper's definition, the transition's MaxPool -> act -> 1x1 conv order against an independent
torch computation, the concatenation keeping its input, W1A1, and the QONNX export check on tiny
instances. Its options are checked in tests/train/models/test_config.py."""

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity

from tests.fixtures import BETHGE_HW, export_and_check, pattern_images, warmed_bethge
from train.models import BinaryDenseNet, build_model, count_conv_weights
from train.models.densenet import DenseLayer, Transition


def expected(c0, layers, growth, reductions, cin=1, classes=10):
    """(conv weights, channels after each block): stem 3x3, per layer a 3x3 conv to `growth`,
    per transition a 1x1 conv to round(C / r), head 1x1 to the classes."""
    total, c, ends = 9 * cin * c0, c0, []
    for b, n in enumerate(layers):
        for _ in range(n):
            total += 9 * c * growth
            c += growth
        ends.append(c)
        if b < len(layers) - 1:
            out = int(round(c / reductions[b]))
            total += c * out
            c = out
    return total + c * classes, ends


@pytest.mark.parametrize("c0,layers,growth,reduction", [
    (32, [6, 6, 6], 16, 2.0), (8, [2, 2], 4, 2.0), (16, [3, 4, 2], 8, [2.5, 1.5]), (6, [3], 5, 2.0)])
def test_structure_and_weight_count(c0, layers, growth, reduction):
    m = build_model(dict(arch="densenet", base_channels=c0, dense_layers=layers, growth_rate=growth,
                         reduction=reduction, in_channels=1, num_classes=10))
    assert isinstance(m, BinaryDenseNet)
    reductions = reduction if isinstance(reduction, list) else [reduction] * (len(layers) - 1)
    weights, ends = expected(c0, layers, growth, reductions)
    assert count_conv_weights(m) == weights and m.channels == ends
    kinds = [type(mod).__name__ for mod in m.body]
    want = []
    for b, n in enumerate(layers):
        want += ["DenseLayer"] * n + (["Transition"] if b < len(layers) - 1 else [])
    assert kinds == want
    assert m(torch.rand(2, 1, 16, 16)).shape == (2, 10)


def test_the_configured_hardware_model_has_the_readme_size():
    m = build_model(dict(arch="densenet", base_channels=32, dense_layers=[6, 6, 6], growth_rate=16,
                         reduction=2.0, **BETHGE_HW))
    assert count_conv_weights(m) == 278_784
    assert m.cfg.describe().startswith("BinaryDenseNet-22")


def _bn(t, b):
    return (t - b.running_mean[None, :, None, None]) / torch.sqrt(b.running_var[None, :, None, None] + b.eps)


def _sign(w):
    s = torch.sign(w.detach())
    s[s == 0] = 1
    return s


def _warm(module, shape):
    module.train()
    with torch.no_grad():
        module(torch.randn(*shape))
    return module.eval()


def test_dense_layer_concatenates_its_input_and_growth_channels():
    torch.manual_seed(0)
    m = build_model(dict(arch="densenet", base_channels=6, dense_layers=[2], growth_rate=5, in_channels=1,
                         num_classes=10, weight_quant="sign"))
    layer = _warm(m.body[1], (4, 11, 6, 6))
    assert isinstance(layer, DenseLayer)
    x = torch.randn(2, 11, 6, 6)
    ref = _bn(F.conv2d(F.relu(_bn(x, layer.bn_in)), _sign(layer.conv.weight), padding=1), layer.bn_out)
    with torch.no_grad():
        out = layer(x)
    assert out.shape == (2, 16, 6, 6)
    assert torch.equal(out[:, :11], x)  # the input is kept, not summed
    torch.testing.assert_close(out[:, 11:], ref, rtol=1e-5, atol=1e-5)


def test_transition_is_bn_maxpool_act_1x1_conv_in_that_order():
    torch.manual_seed(0)
    m = build_model(dict(arch="densenet", base_channels=6, dense_layers=[1, 1], growth_rate=4, in_channels=1,
                         num_classes=10, weight_quant="sign", bn_affine=True))
    t = m.body[1]
    assert isinstance(t, Transition) and t.conv.kernel_size == (1, 1) and t.conv.out_channels == 5
    with torch.no_grad():  # a negative BN scale: max pool before / after the BN differ
        t.bn_in.weight.copy_(torch.linspace(-1.5, 1.5, 10))
    _warm(t, (4, 10, 6, 6))
    x = torch.randn(2, 10, 6, 6)
    h = _bn(x, t.bn_in) * t.bn_in.weight[None, :, None, None] + t.bn_in.bias[None, :, None, None]
    pooled = h.reshape(2, 10, 3, 2, 3, 2).amax(dim=(3, 5))  # 2x2/2 max, by reshaping
    y = F.conv2d(F.relu(pooled), _sign(t.conv.weight))
    ref = _bn(y, t.bn_out) * t.bn_out.weight[None, :, None, None] + t.bn_out.bias[None, :, None, None]
    with torch.no_grad():
        torch.testing.assert_close(t(x), ref, rtol=1e-5, atol=1e-5)


def test_w1a1_activations_are_bipolar_and_every_block_on_one_integer_grid():
    m = warmed_bethge("densenet")
    acts = []
    for mod in m.modules():
        if isinstance(mod, QuantIdentity) and mod.act_quant.bit_width() == 1:
            mod.register_forward_hook(lambda mod, i, o: acts.append(o))
    outs = {}
    for i, mod in enumerate(m.body):
        mod.register_forward_hook(lambda mod, inp, o, i=i: outs.__setitem__(i, o))
    x, _ = pattern_images(4, 12, 10, 3)
    with torch.no_grad():
        m(torch.from_numpy(x[:, None]).float() / 255)
    n_layers = sum(m.cfg.dense_layers)
    assert len(acts) == n_layers + len(m.cfg.dense_layers) - 1 + 1  # layers, transitions, head
    assert all(set(torch.unique(a).tolist()) <= {-1.0, 1.0} for a in acts)
    # the whole concatenated tensor of a block is integer on that block's quantizer's scale
    for i, mod in enumerate(m.body):
        q = mod.block_quant if isinstance(mod, DenseLayer) else mod.next_quant
        levels = outs[i] / q.act_quant.scale()
        assert (levels - levels.round()).abs().max() < 1e-3
        assert levels.round().abs().max() <= 2 ** (BETHGE_HW["residual_bits"] - 1)
    assert len(m.block_quants) == len(m.cfg.dense_layers)
    assert all(isinstance(c, QuantConv2d) for c in m.modules() if isinstance(c, nn.Conv2d))


def test_odd_feature_map_at_a_transition_is_refused():
    m = build_model(dict(arch="densenet", base_channels=4, dense_layers=[1, 1], growth_rate=2, in_channels=1,
                         num_classes=10))
    with pytest.raises(ValueError, match="even feature map"):
        m(torch.rand(1, 1, 7, 7))


@pytest.mark.parametrize("cfg", [dict(), dict(weight_quant="he_const", act_ste="approxsign"),
                                 dict(act_bits=2, weight_quant="bwn")])
def test_export_check_passes(tmp_path, cfg):
    cfg = dict(cfg)
    m = warmed_bethge("densenet", weight_quant=cfg.pop("weight_quant", "sign"), **cfg)
    r = export_and_check(m, tmp_path)
    n_convs = sum(isinstance(mod, nn.Conv2d) for mod in m.modules())
    assert r["passed"], r
    assert r["conv_layers"] == r["conv_layers_two_values"] == n_convs == 7
    assert r["integers_equal"] == r["labels_equal"] == 8
