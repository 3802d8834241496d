import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d

from train.quant import FixedScaleSignWeight, he_std


def binary_conv(cin, cout, k):
    return QuantConv2d(cin, cout, k, padding=k // 2, bias=False,
                       weight_quant=FixedScaleSignWeight, weight_scaling_const=he_std(cin * k * k))


@pytest.mark.parametrize("cin,cout,k", [(1, 16, 3), (16, 16, 3), (32, 64, 1), (64, 10, 1), (3, 160, 3)])
def test_two_values_per_layer_equal_to_he_std(cin, cout, k):
    torch.manual_seed(cin * 100 + cout)
    conv = binary_conv(cin, cout, k)
    wq = conv.quant_weight().value.detach().numpy()
    c = np.float32(math.sqrt(2.0 / (cin * k * k)))  # numpy reference of the fixed scale
    assert sorted(np.unique(wq).tolist()) == [-c, c]
    # the sign of each latent weight decides its value
    np.testing.assert_array_equal(wq, np.where(conv.weight.detach().numpy() >= 0, c, -c))


def test_scale_is_not_learned():
    conv = binary_conv(8, 8, 3)
    names = [n for n, _ in conv.named_parameters()]
    assert names == ["weight"]  # the latent weight only: no scale parameter


def test_gradient_passes_straight_through():
    torch.manual_seed(0)
    conv = binary_conv(4, 6, 3)
    with torch.no_grad():
        conv.weight.mul_(10.0)  # latent weights far outside +-c: a clipped STE would zero them
    x = torch.randn(2, 4, 8, 8)
    g = torch.randn(2, 6, 8, 8)
    (conv(x) * g).sum().backward()
    # reference: gradient w.r.t. the binarized weight, computed with plain torch
    wq = conv.quant_weight().value.detach().clone().requires_grad_(True)
    (F.conv2d(x, wq, padding=1) * g).sum().backward()
    # d(sign(w) * c)/dw = 1: the latent weight gets the binarized weight's gradient, for every
    # weight (none clipped away, none scaled down by c)
    assert torch.count_nonzero(conv.weight.grad) == conv.weight.numel()
    assert torch.equal(conv.weight.grad, wq.grad)


def test_he_std_rejects_bad_fan_in():
    with pytest.raises(ValueError):
        he_std(0)
