"""The binary-weight methods as Brevitas quantizers, against numpy / plain-torch references."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantConv2d, QuantIdentity
from brevitas.quant import SignedBinaryActPerTensorConst

from train.quant.weights import WEIGHT_QUANTS, bipolar_act_kwargs, weight_quant_kwargs


def conv(method, cin=6, cout=5, k=3, ste="identity", t_clip=1.0, seed=0):
    torch.manual_seed(seed)
    return QuantConv2d(cin, cout, k, padding=k // 2, bias=False,
                       **weight_quant_kwargs(method, cin * k * k, ste, t_clip))


def numpy_scales(method, w: np.ndarray) -> np.ndarray:
    """a_c per output channel from the method's definition (float64)."""
    c, fan_in = w.shape[0], int(np.prod(w.shape[1:]))
    if method == "he_const":
        return np.full(c, math.sqrt(2.0 / fan_in))
    if method == "sign":
        return np.ones(c)
    return np.abs(w.astype(np.float64)).reshape(c, -1).mean(axis=1)  # bwn; bwn_learned at init


@pytest.mark.parametrize("method", WEIGHT_QUANTS)
def test_weights_are_sign_times_the_method_scale(method):
    layer = conv(method)
    w = layer.weight.detach().numpy()
    wq = layer.quant_weight().value.detach().numpy()
    a = numpy_scales(method, w)
    np.testing.assert_allclose(wq, np.where(w >= 0, 1.0, -1.0) * a[:, None, None, None], rtol=1e-6, atol=0)
    for c in range(w.shape[0]):  # exactly two values per output channel, +-a_c
        values = np.unique(wq[c])
        assert len(values) == 2 and values[0] == -values[1] and values[1] > 0
    if method in ("he_const", "sign"):  # one value per layer, exactly the float32 constant
        assert set(np.abs(wq).ravel().tolist()) == {float(np.float32(a[0]))}


def test_bwn_scale_follows_the_latent_weights():
    layer = conv("bwn")
    with torch.no_grad():
        layer.weight.mul_(torch.arange(1, 6, dtype=torch.float32).view(5, 1, 1, 1))
    wq = layer.quant_weight().value.detach().numpy()
    np.testing.assert_allclose(np.abs(wq).max(axis=(1, 2, 3)), numpy_scales("bwn", layer.weight.detach().numpy()),
                               rtol=1e-6)


@pytest.mark.parametrize("method", ["he_const", "bwn", "sign"])
@pytest.mark.parametrize("ste,t_clip", [("identity", 1.0), ("clipped", 0.1), ("approxsign", 0.2)])
def test_latent_gradient_is_the_ste_of_the_binarized_weights_gradient(method, ste, t_clip):
    """No gradient through the scale (bwn's mean is a constant, as larq's MagnitudeAwareSign),
    none multiplied by it: latent grad = grad w.r.t. the binarized weight * STE'(w)."""
    layer = conv(method, ste=ste, t_clip=t_clip)
    x, g = torch.randn(2, 6, 7, 7), torch.randn(2, 5, 7, 7)
    (layer(x) * g).sum().backward()
    wq = layer.quant_weight().value.detach().clone().requires_grad_(True)
    (F.conv2d(x, wq, padding=1) * g).sum().backward()
    w = layer.weight.detach()
    factor = {"identity": torch.ones_like(w), "clipped": (w.abs() <= t_clip).float(),
              "approxsign": torch.clamp(2 / t_clip * (1 - w.abs() / t_clip), min=0)}[ste]
    torch.testing.assert_close(layer.weight.grad, wq.grad * factor, rtol=1e-6, atol=1e-7)
    assert [n for n, _ in layer.named_parameters()] == ["weight"]  # no scale parameter


def test_bwn_learned_scale_is_a_parameter_initialised_to_mean_abs_w():
    layer = conv("bwn_learned")
    params = dict(layer.named_parameters())
    assert set(params) == {"weight", "weight_quant.tensor_quant.scaling_impl.value"}
    layer.quant_weight()  # Brevitas initialises the parameter from the first forward's statistic
    log2_a = params["weight_quant.tensor_quant.scaling_impl.value"].detach().numpy().reshape(-1)
    np.testing.assert_allclose(2.0 ** log2_a, numpy_scales("bwn", layer.weight.detach().numpy()), rtol=1e-6)


def test_bwn_learned_gradients_equal_autograd_of_the_written_out_formula():
    """y = conv(x, sign(w) * 2^p): p gets autograd's gradient of that formula, w the identity STE."""
    layer = conv("bwn_learned")
    x, g = torch.randn(2, 6, 7, 7), torch.randn(2, 5, 7, 7)
    (layer(x) * g).sum().backward()
    p_model = dict(layer.named_parameters())["weight_quant.tensor_quant.scaling_impl.value"]
    w = layer.weight.detach().clone().requires_grad_(True)
    p = p_model.detach().clone().reshape(5, 1, 1, 1).requires_grad_(True)
    sign_w = torch.where(w >= 0, 1.0, -1.0)
    wq = (sign_w + (w - w.detach())) * 2.0 ** p  # straight-through value of w, scaled
    (F.conv2d(x, wq, padding=1) * g).sum().backward()
    torch.testing.assert_close(p_model.grad.reshape(5, 1, 1, 1), p.grad, rtol=1e-5, atol=1e-7)
    # the latent weight's gradient is not multiplied by the scale (the project's convention)
    torch.testing.assert_close(layer.weight.grad, w.grad / 2.0 ** p.detach(), rtol=1e-5, atol=1e-7)
    assert torch.count_nonzero(p_model.grad) == 5


def test_sign_weights_are_plus_minus_one():
    wq = conv("sign").quant_weight().value
    assert set(torch.unique(wq).tolist()) == {-1.0, 1.0}


@pytest.mark.parametrize("method", WEIGHT_QUANTS)
def test_every_method_exports_as_bipolar_quant(method, tmp_path):
    import onnx
    from brevitas.export import export_qonnx
    from onnx import numpy_helper

    layer = conv(method).eval()
    layer.quant_weight()
    export_qonnx(layer, args=torch.randn(1, 6, 7, 7), export_path=str(tmp_path / "c.onnx"))
    g = onnx.load(tmp_path / "c.onnx").graph
    q = [n for n in g.node if n.op_type == "BipolarQuant"]
    assert len(q) == 1
    inits = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    scale = inits[q[0].input[1]] if q[0].input[1] in inits else next(
        numpy_helper.to_array(n.attribute[0].t) for n in g.node if n.output[0] == q[0].input[1])
    expected = numpy_scales(method, layer.weight.detach().numpy())
    if method in ("bwn", "bwn_learned"):
        assert scale.shape == (5, 1, 1, 1)  # per output channel
    np.testing.assert_allclose(scale.reshape(-1) * np.ones(5), expected, rtol=1e-6)


def test_bad_method_is_a_one_line_error():
    with pytest.raises(ValueError, match="weight_quant must be one of he_const, bwn, bwn_learned, sign; got 'xnor'"):
        weight_quant_kwargs("xnor", 9)


def act(kind=None, t=1.0):
    kw = bipolar_act_kwargs() if kind is None else bipolar_act_kwargs(kind, t)
    return QuantIdentity(**kw, return_quant_tensor=False)


def test_default_bipolar_activation_equals_brevitas_signed_binary_act():
    """The default act STE (clipped, t = 1) is what SignedBinaryActPerTensorConst computed before:
    the same outputs and the same gradients."""
    x = torch.cat([torch.linspace(-3, 3, 61), torch.tensor([0.0, -1.0, 1.0])])
    x1, x2 = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    g = torch.randn(len(x))
    y1 = act()(x1)
    y2 = QuantIdentity(act_quant=SignedBinaryActPerTensorConst, return_quant_tensor=False)(x2)
    (y1 * g).sum().backward()
    (y2 * g).sum().backward()
    assert torch.equal(y1, y2) and set(y1.tolist()) == {-1.0, 1.0}
    assert torch.equal(x1.grad, x2.grad)


@pytest.mark.parametrize("kind,t", [("identity", 1.0), ("clipped", 0.5), ("approxsign", 1.0), ("approxsign", 2.0)])
def test_bipolar_activation_ste_is_selectable(kind, t):
    x = torch.linspace(-3, 3, 61, requires_grad=True)
    y = act(kind, t)(x)
    y.sum().backward()
    xd = x.detach()
    ref = {"identity": torch.ones_like(xd), "clipped": (xd.abs() <= t).float(),
           "approxsign": torch.clamp(2 / t * (1 - xd.abs() / t), min=0)}[kind]
    torch.testing.assert_close(x.grad, ref)
    assert torch.equal(y.detach(), torch.where(xd >= 0, 1.0, -1.0))
