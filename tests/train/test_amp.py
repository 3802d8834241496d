"""Mixed precision (train.amp): the quantizers stay float32 and exact; bad settings are one line.

On a CPU autocast runs in bfloat16, which is enough to show what the float32 hook is for; the
CUDA runs (float16 with loss scaling, bfloat16) are marked ``gpu``.
"""

import json

import numpy as np
import pytest
import torch
import torch.nn as nn
from brevitas.nn import QuantReLU

from common.errors import UserError
from tests.train.test_trainer import tiny_cfg  # noqa: F401 - the fixture
from train.amp import MixedPrecision, check_amp, keep_quantizers_fp32
from train.quant import LearnedRangeReLU
from train.trainer import fit


def conv_bn_quant(bits: int) -> nn.Sequential:
    torch.manual_seed(bits)
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8),
                         QuantReLU(act_quant=LearnedRangeReLU, bit_width=bits, max_val=2.0,
                                   return_quant_tensor=False))


def run_under_bf16_autocast(model: nn.Sequential, x: torch.Tensor):
    """The quantizer's input (as it receives it) and output, in training mode under autocast."""
    seen = {}
    model[2].register_forward_hook(lambda m, args, out: seen.update(x=args[0], y=out))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        model(x.requires_grad_(True)).float().sum().backward()
    return seen["x"], seen["y"]


@pytest.mark.parametrize("bits", [2, 4])
def test_quantizer_runs_in_float32_under_autocast(bits):
    model = conv_bn_quant(bits)
    assert keep_quantizers_fp32(model) == 1
    xq, y = run_under_bf16_autocast(model, torch.randn(4, 3, 9, 9))
    assert xq.dtype == torch.float32 and y.dtype == torch.float32
    scale = float(model[2].act_quant.scale())
    # numpy reference: float32 division, round half to even, clamp to the unsigned range
    ints = np.clip(np.rint(xq.detach().numpy() / np.float32(scale)), 0, 2 ** bits - 1)
    np.testing.assert_array_equal(y.detach().numpy(), (ints * np.float32(scale)).astype(np.float32))


def test_without_the_hook_the_quantizer_would_see_bfloat16():
    """Why the hook exists: BatchNorm after an autocast conv hands the quantizer bfloat16."""
    xq, y = run_under_bf16_autocast(conv_bn_quant(2), torch.randn(4, 3, 9, 9))
    assert xq.dtype == torch.bfloat16


@pytest.mark.parametrize("amp,device,message", [
    ("fp8", "cpu", "train.amp must be null, bf16 or fp16; got 'fp8'"),
    ("fp16", "cpu", "train.amp: fp16 needs a CUDA device (use bf16 on a CPU)"),
])
def test_bad_settings_are_one_line(amp, device, message):
    with pytest.raises(UserError) as e:
        check_amp(amp, torch.device(device))
    assert str(e.value) == message
    with pytest.raises(UserError):
        MixedPrecision(amp, torch.device(device))


def test_bf16_run_on_cpu_trains_and_resumes(tiny_cfg, tmp_path):  # noqa: F811 - the fixture
    cfg = {**tiny_cfg, "train": {**tiny_cfg["train"], "amp": "bf16", "epochs": 4}}
    fit(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["train_loss"] < 0.9 * rows[0]["train_loss"]
    extended = fit(cfg, tmp_path / "run", resume=True, extend_to=5, progress=False)
    assert extended["epochs"] == 5


@pytest.mark.gpu
@pytest.mark.parametrize("amp", [None, "bf16", "fp16"])
def test_cuda_run_with_mixed_precision(tiny_cfg, tmp_path, amp):  # noqa: F811 - the fixture
    cfg = {**tiny_cfg, "device": "cuda", "export": {**tiny_cfg["export"], "enabled": True, "check_images": 64},
           "train": {**tiny_cfg["train"], "amp": amp, "epochs": 4}}
    final = fit(cfg, tmp_path / "run", progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert final["device"].startswith("cuda")
    assert rows[-1]["train_loss"] < 0.9 * rows[0]["train_loss"]
    assert final["export"]["passed"]  # the float32 quantizers export bit-exact to QONNX
