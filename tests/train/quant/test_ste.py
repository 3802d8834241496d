"""The straight-through estimators against numeric references (larq-style).

Each STE is the derivative of a written-out surrogate function F; the backward pass of
``scaled_sign`` must equal torch autograd of F and F's central finite differences (float64,
at points away from F's kinks), and the forward pass must be numpy's sign.
"""

import numpy as np
import pytest
import torch

from train.quant.ste import STE_KINDS, check_ste, scaled_sign, ste_derivative


def surrogate(x: torch.Tensor, kind: str, t: float) -> torch.Tensor:
    """F with dF/dx = the STE, written out independently of train.quant.ste."""
    if kind == "identity":
        return x
    if kind == "clipped":  # hard tanh at +-t
        return torch.minimum(torch.maximum(x, torch.full_like(x, -t)), torch.full_like(x, t))
    # approxsign (Bi-Real Net, scaled to t): 2x/t - x|x|/t^2 inside [-t, t], sign(x) outside
    inside = 2 * x / t - x * x.abs() / t ** 2
    return torch.where(x.abs() <= t, inside, torch.sign(x))


def sample(t: float, n: int = 401, seed: int = 0) -> torch.Tensor:
    """Points in [-3t, 3t], none within 1e-3 of the kinks 0 and +-t (finite differences there
    would straddle them)."""
    x = torch.from_numpy(np.random.default_rng(seed).uniform(-3 * t, 3 * t, n))
    kinks = torch.tensor([0.0, t, -t], dtype=x.dtype)
    return x[(x[:, None] - kinks).abs().min(dim=1).values > 1e-3]


def ste_grad(x: torch.Tensor, kind: str, t: float, g: torch.Tensor) -> torch.Tensor:
    x = x.clone().requires_grad_(True)
    (scaled_sign(x, torch.ones((), dtype=x.dtype), kind, t) * g).sum().backward()
    return x.grad


@pytest.mark.parametrize("t", [1.0, 0.5, 1.3])
@pytest.mark.parametrize("kind", STE_KINDS)
def test_backward_equals_autograd_of_the_surrogate(kind, t):
    x = sample(t)
    g = torch.from_numpy(np.random.default_rng(1).normal(size=len(x)))
    xr = x.clone().requires_grad_(True)
    (surrogate(xr, kind, t) * g).sum().backward()
    torch.testing.assert_close(ste_grad(x, kind, t, g), xr.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("t", [1.0, 0.7])
@pytest.mark.parametrize("kind", STE_KINDS)
def test_backward_equals_finite_differences(kind, t):
    x, h = sample(t, seed=2), 1e-6
    fd = (surrogate(x + h, kind, t) - surrogate(x - h, kind, t)) / (2 * h)
    torch.testing.assert_close(ste_grad(x, kind, t, torch.ones_like(x)), fd, rtol=1e-6, atol=1e-6)


def test_named_values():
    """The published formulas at a few points: clipped is 1 inside, ApproxSign is 2 - 2|x| (t = 1)."""
    x = torch.tensor([-2.0, -1.0, -0.75, -0.25, 0.0, 0.5, 1.0, 1.5], dtype=torch.float64)
    ones = torch.ones_like(x)
    assert ste_grad(x, "identity", 1.0, ones).tolist() == [1.0] * 8
    assert ste_grad(x, "clipped", 1.0, ones).tolist() == [0, 1, 1, 1, 1, 1, 1, 0]  # |x| <= t inclusive
    assert ste_grad(x, "approxsign", 1.0, ones).tolist() == [0, 0, 0.5, 1.5, 2, 1, 0, 0]
    # with t = 2: (2/t)(1 - |x|/t)
    assert ste_grad(x, "approxsign", 2.0, ones).tolist() == [0, 0.5, 0.625, 0.875, 1, 0.75, 0.5, 0.25]


@pytest.mark.parametrize("kind", STE_KINDS)
def test_forward_is_numpy_sign_times_scale(kind):
    x = torch.tensor([[-1.5, -0.0, 0.0, 2e-8], [0.3, -0.3, 4.0, -4.0]])
    scale = torch.tensor([[0.25], [3.0]])  # one per row, as per output channel
    y = scaled_sign(x, scale, kind).numpy()
    ref = np.where(x.numpy() >= 0, 1.0, -1.0) * scale.numpy()  # sign(0) = +1, as BipolarQuant
    assert np.array_equal(y, ref)


@pytest.mark.parametrize("scale_shape", [(), (4, 1, 1, 1)])
def test_learned_scale_gets_the_gradient_of_sign_times_scale(scale_shape):
    torch.manual_seed(0)
    w = torch.randn(4, 3, 2, 2)
    g = torch.randn(4, 3, 2, 2)
    s = torch.rand(scale_shape).add_(0.5).requires_grad_(True)
    (scaled_sign(w, s, "clipped") * g).sum().backward()
    ref_s = s.detach().clone().requires_grad_(True)  # reference: the plain formula sign(w) * s
    (torch.where(w >= 0, 1.0, -1.0) * ref_s * g).sum().backward()
    torch.testing.assert_close(s.grad, ref_s.grad)


def test_latent_gradient_is_not_multiplied_by_the_scale():
    w = torch.tensor([0.2, -0.4, 3.0], requires_grad=True)
    (scaled_sign(w, torch.tensor(0.05), "identity") * torch.tensor([1.0, 2.0, 3.0])).sum().backward()
    assert w.grad.tolist() == [1.0, 2.0, 3.0]


def test_ste_derivative_matches_the_backward_pass():
    x = torch.linspace(-2, 2, 41, dtype=torch.float64)
    for kind in STE_KINDS:
        assert torch.equal(ste_derivative(x, kind, 1.5), ste_grad(x, kind, 1.5, torch.ones_like(x)))


@pytest.mark.parametrize("kind,t,match", [("straight", 1.0, "STE must be one of identity, clipped, approxsign"),
                                         ("clipped", 0.0, "ste_clip must be a positive number"),
                                         ("clipped", -1.0, "ste_clip must be a positive number"),
                                         ("clipped", True, "ste_clip must be a positive number"),
                                         ("clipped", "1", "ste_clip must be a positive number")])
def test_bad_ste_options_are_one_line_errors(kind, t, match):
    with pytest.raises(ValueError, match=match) as e:
        check_ste(kind, t)
    assert "\n" not in str(e.value)
