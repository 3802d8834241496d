"""Automatic mixed precision (``train.amp``) that leaves the quantizers exact.

Under ``torch.autocast`` the convolutions run in bfloat16 or float16, and so, after them, does
BatchNorm; an activation quantizer fed a half-precision tensor would compute ``x / scale`` and the
rounding in half precision, i.e. put values into other integer bins than the exported model does.
``keep_quantizers_fp32`` casts every Brevitas activation quantizer's input to float32 first, so
quantization runs in float32 as without AMP (its ops are not autocast ops, they stay float32) and
only the convolutions and matrix products between the quantizers are in reduced precision.
float16 needs loss scaling (``GradScaler``); bfloat16 has float32's range and does not.
"""

from __future__ import annotations

import contextlib

import torch
from brevitas.nn.quant_layer import QuantNonLinearActLayer

from common.errors import UserError

AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(amp: str | None, device: torch.device) -> None:
    """One line for an AMP setting this device cannot run."""
    if amp is None:
        return
    if amp not in AMP_DTYPES:
        raise UserError(f"train.amp must be null, bf16 or fp16; got {amp!r}")
    if amp == "fp16" and device.type != "cuda":
        raise UserError("train.amp: fp16 needs a CUDA device (use bf16 on a CPU)")


def _to_fp32(module, args):
    return tuple(a.float() if torch.is_tensor(a) and a.is_floating_point() and a.dtype != torch.float32 else a
                 for a in args)


def keep_quantizers_fp32(model: torch.nn.Module) -> int:
    """Make every Brevitas activation quantizer (QuantReLU, QuantIdentity, ...) of ``model``
    quantize a float32 copy of its input; returns how many there are. Inert without autocast."""
    count = 0
    for module in model.modules():
        if isinstance(module, QuantNonLinearActLayer):
            module.register_forward_pre_hook(_to_fp32)
            count += 1
    return count


class MixedPrecision:
    """``train.amp`` for one run: the autocast context of the forward pass and the optimizer step
    (with float16's loss scaling). With ``amp`` None both are plain float32 training."""

    def __init__(self, amp: str | None, device: torch.device):
        check_amp(amp, device)
        self.amp, self.device = amp, device
        self.scaler = torch.amp.GradScaler(device.type) if amp == "fp16" else None

    def forward(self):
        if self.amp is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=AMP_DTYPES[self.amp])

    def step(self, loss: torch.Tensor, opt: torch.optim.Optimizer) -> None:
        """backward and the optimizer step (the caller has zeroed the gradients)."""
        if self.scaler is None:
            loss.backward()
            opt.step()
            return
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)
        self.scaler.update()

    def state_dict(self) -> dict | None:
        return None if self.scaler is None else self.scaler.state_dict()

    def load_state_dict(self, state: dict | None) -> None:
        if self.scaler is not None and state:
            self.scaler.load_state_dict(state)
