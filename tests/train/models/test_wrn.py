import pytest
import torch
import torch.nn as nn
from brevitas.nn import QuantConv2d, QuantIdentity, QuantReLU

from train.models import ModelConfig, build_model, count_conv_weights
from train.models.layers import Layers
from train.models.wrn import Block

HW = dict(act_bits=2, input_bits=8, residual_bits=4, head_bits=8, shortcut="conv")


def expected_conv_weights(depth, k, cin, classes, shortcut):
    """Independent count from the WRN definition."""
    n = (depth - 2) // 6
    w = [16 * k, 32 * k, 64 * k]
    total = 9 * cin * w[0]
    c = w[0]
    for s, co in enumerate(w):
        for i in range(n):
            total += 9 * c * co + 9 * co * co
            if shortcut == "conv" and c != co:
                total += c * co
            c = co
    return total + c * classes


@pytest.mark.parametrize("depth,k,shortcut", [(8, 1, "conv"), (14, 2, "conv"), (8, 2, "avgpool_pad"), (20, 1, "avgpool_pad")])
def test_structure_and_weight_count(depth, k, shortcut):
    m = build_model(dict(depth=depth, width=k, in_channels=3, num_classes=10, shortcut=shortcut))
    assert len(m.blocks) == 3 * (depth - 2) // 6
    assert m.conv0.out_channels == 16 * k
    strides = [b.conv1.stride[0] for b in m.blocks]
    n = (depth - 2) // 6
    assert strides == [1] * n + [2] + [1] * (n - 1) + [2] + [1] * (n - 1)
    assert count_conv_weights(m) == expected_conv_weights(depth, k, 3, 10, shortcut)
    out = m(torch.rand(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_every_conv_is_binary_first_and_last_included():
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **HW))
    convs = [mod for mod in m.modules() if isinstance(mod, nn.Conv2d)]
    assert convs[0] is m.conv0 and convs[-1] is m.head_conv
    assert all(isinstance(c, QuantConv2d) and c.weight_quant.is_quant_enabled for c in convs)
    assert all(len(torch.unique(c.quant_weight().value)) == 2 for c in convs)


def test_bn_without_affine_has_no_parameters():
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, bn_affine=False))
    bns = [mod for mod in m.modules() if isinstance(mod, nn.BatchNorm2d)]
    assert len(bns) == 2 * len(m.blocks) + 2
    assert all(len(list(bn.parameters())) == 0 for bn in bns)
    m2 = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, bn_affine=True))
    # the head's last BN never has an affine part (McDonnell); the others do when asked
    assert sum(len(list(b.parameters())) == 2 for b in m2.modules() if isinstance(b, nn.BatchNorm2d)) == len(bns) - 1


def test_full_precision_twin_has_no_quantizers():
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, binary_weights=False))
    assert not any(isinstance(mod, (QuantConv2d, QuantReLU, QuantIdentity)) for mod in m.modules())
    assert count_conv_weights(m) == expected_conv_weights(8, 1, 1, 10, "avgpool_pad")


def test_one_bit_activations_are_bipolar():
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **{**HW, "act_bits": 1})).eval()
    seen = []
    for mod in m.modules():
        if isinstance(mod, QuantIdentity) and mod.act_quant.bit_width() == 1:
            mod.register_forward_hook(lambda mod, i, o: seen.append(o))
    m(torch.rand(4, 1, 16, 16))
    assert len(seen) == 2 * len(m.blocks) + 1
    assert all(set(torch.unique(o).tolist()) <= {-1.0, 1.0} for o in seen)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_activations_are_k_bit_unsigned(bits):
    torch.manual_seed(bits)
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **{**HW, "act_bits": bits}))
    seen = []
    for mod in m.modules():
        if isinstance(mod, QuantReLU):
            mod.register_forward_hook(lambda mod, i, o: seen.append((mod, o)))
    m.eval()(torch.rand(4, 1, 16, 16))
    assert seen
    for mod, out in seen:
        levels = out / mod.act_quant.scale()
        assert (levels - levels.round()).abs().max() < 1e-3  # on the integer grid, up to float error
        assert levels.round().min() >= 0 and levels.round().max() <= 2 ** bits - 1


def test_residual_add_inputs_share_one_quantizer():
    """Both inputs of every add are integers on one scale, so the sum is too (FINN AddStreams)."""
    torch.manual_seed(0)
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **HW)).eval()
    sums = []
    for b in m.blocks:
        b.register_forward_hook(lambda mod, i, o: sums.append((mod, o)))
    m(torch.rand(4, 1, 16, 16))
    assert len(sums) == len(m.blocks)
    for block, out in sums:
        q = out / block.add_quant.act_quant.scale()
        assert (q - q.round()).abs().max() < 1e-3  # on the integer grid, up to float error
        assert q.round().abs().max() <= 2 * 2 ** (HW["residual_bits"] - 1)


def test_input_quantizer_maps_pixels_to_integers():
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **HW)).eval()
    pixels = torch.arange(256, dtype=torch.float32).reshape(1, 1, 16, 16)
    q = m.input_quant(pixels / 255.0)
    assert torch.equal(torch.round(q * 255.0), pixels)


def test_avgpool_shortcut_pads_channels_with_zeros():
    blk = Block(Layers(ModelConfig(depth=8, width=1)), 4, 8, 2).eval()
    x = torch.randn(1, 4, 8, 8)
    for conv in (blk.conv1, blk.conv2):
        nn.init.zeros_(conv.weight)  # sign(0) = +1: keep the branch but make it a known constant
    with torch.no_grad():
        branch = blk.conv2(blk.relu2(blk.bn2(blk.conv1(blk.relu1(blk.bn1(x))))))
        out = blk(x)
    shortcut = out - branch
    pooled = torch.nn.functional.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
    torch.testing.assert_close(shortcut[:, :4], pooled)
    assert torch.count_nonzero(shortcut[:, 4:]) == 0


@pytest.mark.parametrize("method,weight_ste,act_ste,t_clip", [
    ("he_const", "clipped", "identity", 0.5), ("bwn", "approxsign", "approxsign", 1.0),
    ("bwn_learned", "identity", "clipped", 2.0), ("sign", "clipped", "approxsign", 1.3)])
def test_method_and_stes_reach_every_binary_layer(method, weight_ste, act_ste, t_clip):
    from train.quant import StraightThroughBinaryQuant

    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **{**HW, "act_bits": 1},
                         weight_quant=method, weight_ste=weight_ste, act_ste=act_ste, ste_clip=t_clip))
    convs = [mod for mod in m.modules() if isinstance(mod, QuantConv2d)]
    acts = [mod for mod in m.modules() if isinstance(mod, QuantIdentity) and mod.act_quant.bit_width() == 1]
    assert len(convs) == 10 and len(acts) == 2 * len(m.blocks) + 1
    for c in convs:
        tq = c.weight_quant.tensor_quant
        assert isinstance(tq, StraightThroughBinaryQuant)
        assert (tq.ste_kind, tq.ste_clip, tq.scale_grad) == (weight_ste, t_clip, method == "bwn_learned")
        scale = c.quant_weight().scale
        assert scale.numel() == (c.out_channels if method.startswith("bwn") else 1)
    for a in acts:
        tq = a.act_quant.fused_activation_quant_proxy.tensor_quant
        assert (tq.ste_kind, tq.ste_clip) == (act_ste, t_clip)
