"""The compiled quantizers (train.quant.fused) against Brevitas' eager IntQuant and numpy.

The fused path must not change what is trained: the quantized outputs and the gradients w.r.t.
the inputs are bit for bit Brevitas' (and the forward numpy's), the learned scales' gradients
equal up to the order of a float sum, and a whole model's loss is identical.
"""

import copy
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from brevitas.nn import QuantIdentity, QuantReLU

import train.quant.fused as fused
from train.config import DEFAULT_CONFIG, load_config
from train.models import build_model
from train.quant import LearnedRangeReLU, SignedResidualQuant, relu_max_init


def relu_quant(bits: int) -> torch.nn.Module:
    return QuantReLU(act_quant=LearnedRangeReLU, bit_width=bits, max_val=relu_max_init(bits),
                     return_quant_tensor=False)


def residual_quant(bits: int, stats_steps: int = 2) -> torch.nn.Module:
    return QuantIdentity(act_quant=SignedResidualQuant, bit_width=bits, collect_stats_steps=stats_steps,
                         return_quant_tensor=False)


def tensor_quant(module: torch.nn.Module):
    return module.act_quant.fused_activation_quant_proxy.tensor_quant


def train_call(module, x0: torch.Tensor, g: torch.Tensor, fused_on: bool, monkeypatch):
    """One training forward/backward; the output, the input's gradient, the parameters' gradients."""
    monkeypatch.setenv(fused.ENV_SWITCH, "1" if fused_on else "0")
    module.zero_grad(set_to_none=True)
    x = x0.clone().requires_grad_(True)
    y = module(x)
    y.backward(g)
    return y.detach(), x.grad, {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.fixture
def fused_calls(monkeypatch):
    """Counts the training calls that took the compiled path (so a comparison of Brevitas with
    itself cannot pass for one of Brevitas with the fused quantizer)."""
    calls = []
    get = fused._Compiled.get

    def counting_get(*args):
        fn = get(*args)
        calls.append(fn is not None)
        return fn

    monkeypatch.setattr(fused._Compiled, "get", counting_get)
    return calls


def numpy_fake_quant(x: np.ndarray, scale: float, lo: int, hi: int) -> np.ndarray:
    """clamp(round_half_even(x / s), lo, hi) * s in float32, written with numpy only."""
    s = np.float32(scale)
    return (np.clip(np.rint(x / s), lo, hi) * s).astype(np.float32)


@pytest.mark.parametrize("shape", [(4, 3, 5, 5), (16, 8, 7, 7), (2, 1, 28, 28)])
@pytest.mark.parametrize("kind,bits,lo,hi", [("relu", 1, 0, 1), ("relu", 2, 0, 3), ("relu", 4, 0, 15),
                                             ("residual", 4, -8, 7), ("residual", 8, -128, 127)])
def test_equal_to_brevitas_after_the_stats_phase(kind, bits, lo, hi, shape, monkeypatch, fused_calls):
    torch.manual_seed(bits)
    eager = relu_quant(bits) if kind == "relu" else residual_quant(bits)
    x0, g = torch.randn(shape) * 2, torch.randn(shape)
    for _ in range(3):  # past the residual quantizer's 2 statistics steps: its scale is a parameter now
        train_call(eager, x0, g, False, monkeypatch)
    fast = copy.deepcopy(eager)
    y_ref, gx_ref, gp_ref = train_call(eager, x0, g, False, monkeypatch)
    assert fused_calls == []  # the eager calls did not enter the compiled path
    y, gx, gp = train_call(fast, x0, g, True, monkeypatch)
    assert isinstance(tensor_quant(fast).int_quant, fused.FusedIntQuant)
    assert fused_calls == [True], "the fused path did not run"
    assert torch.equal(y, y_ref)
    assert torch.equal(gx, gx_ref)
    scale = float(fast.act_quant.scale().detach())
    xin = torch.relu(x0) if kind == "relu" else x0
    np.testing.assert_array_equal(y.numpy(), numpy_fake_quant(xin.numpy(), scale, lo, hi))
    assert gp.keys() == gp_ref.keys() and gp  # the learned scale has a gradient
    for name in gp:  # a sum over the tensor in another order (with cancellation): equal to float32 rounding
        bound = 1e-6 * float((g.abs() * (x0.abs() + 1)).sum())  # ~eps times the sum of |terms|
        torch.testing.assert_close(gp[name], gp_ref[name], rtol=1e-5, atol=bound)


def test_stats_phase_close_to_brevitas(monkeypatch, fused_calls):
    """While the residual quantizer's scale is a statistic of its input, the input's gradient
    includes the path through the scale; equal outputs, gradients equal but for float sums."""
    torch.manual_seed(0)
    eager = residual_quant(8, stats_steps=100)
    fast = copy.deepcopy(eager)
    x0, g = torch.randn(8, 4, 6, 6), torch.randn(8, 4, 6, 6)
    y_ref, gx_ref, _ = train_call(eager, x0, g, False, monkeypatch)
    y, gx, _ = train_call(fast, x0, g, True, monkeypatch)
    assert fused_calls == [True]
    assert torch.equal(y, y_ref)
    torch.testing.assert_close(gx, gx_ref, rtol=1e-5, atol=1e-6)


def test_default_model_loss_and_gradients(monkeypatch, fused_calls):
    """The default config's WRN on one batch: the same loss to the bit, the same gradients."""
    cfg = load_config(DEFAULT_CONFIG)
    torch.manual_seed(0)
    eager = build_model({**cfg["model"], "in_channels": 1, "num_classes": 10}).train()
    fast = copy.deepcopy(eager)
    x, labels = torch.rand(16, 1, 28, 28), torch.randint(0, 10, (16,))

    def step(model, on):
        monkeypatch.setenv(fused.ENV_SWITCH, "1" if on else "0")
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    for _ in range(2):
        loss_ref, grads_ref = step(eager, False)
        calls_before = len(fused_calls)
        loss, grads = step(fast, True)
        assert len(fused_calls) > calls_before and all(fused_calls)  # every activation quantizer, compiled
        assert torch.equal(loss, loss_ref)
        assert grads.keys() == grads_ref.keys()
        for name in grads:
            ref = grads_ref[name]
            torch.testing.assert_close(grads[name], ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()), msg=name)


@pytest.mark.parametrize("context", ["eval", "no_grad", "switched_off"])
def test_brevitas_runs_outside_training(context, monkeypatch):
    """Inference, export and the switch use Brevitas' own ops: the compiled path is not entered."""
    def refuse(*args, **kwargs):
        raise AssertionError("fused quantizer used")

    monkeypatch.setattr(fused._Compiled, "get", refuse)
    module = relu_quant(2)
    x = torch.randn(4, 3, 5, 5, requires_grad=context != "no_grad")
    if context == "eval":
        module.eval()
        with torch.no_grad():
            module(x)
    elif context == "no_grad":
        module(x)
    else:
        monkeypatch.setenv(fused.ENV_SWITCH, "0")
        module(x).sum().backward()


def test_compiler_failure_falls_back_with_one_warning(monkeypatch, caplog):
    def broken_compile(fn, **kwargs):
        def run(*args):
            raise RuntimeError("no C++ compiler found\nsecond line")
        return run

    monkeypatch.setattr(fused._Compiled, "fn", None)
    monkeypatch.setattr(fused._Compiled, "failed", False)
    monkeypatch.setattr(fused.torch, "compile", broken_compile)
    torch.manual_seed(0)
    eager = relu_quant(2)
    fast = copy.deepcopy(eager)
    x0, g = torch.randn(4, 3, 5, 5), torch.randn(4, 3, 5, 5)
    with caplog.at_level(logging.WARNING, logger=fused.__name__):
        y, gx, _ = train_call(fast, x0, g, True, monkeypatch)
        train_call(fast, x0, g, True, monkeypatch)
    warnings = [r.getMessage() for r in caplog.records if r.name == fused.__name__]
    assert warnings == ["fused quantizers unavailable (no C++ compiler found); training uses Brevitas' eager "
                        "quantizers"]
    y_ref, gx_ref, _ = train_call(eager, x0, g, False, monkeypatch)
    assert torch.equal(y, y_ref) and torch.equal(gx, gx_ref)
