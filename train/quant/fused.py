"""Integer fake quantization compiled into one fused kernel per direction, for training.

Brevitas' ``IntQuant`` runs ``clamp(round_ste(x / s + z), lo, hi) - z) * s`` as a chain of
eager elementwise ops (div, add, round, two ``where`` for the clamp, sub, mul) and autograd adds as
many again on the way back: on a CPU that chain, not the convolutions, made the default
config train at 0.65x full-precision speed (see ``bench/results/train_throughput.md``).
``FusedIntQuant`` computes the same formula with ``torch.compile``, which turns the forward into
one loop over the tensor and the backward (the STE's mask times the incoming gradient, and the
scale's gradient) into one more.

Numerics are Brevitas': the same ops in the same order, so the quantized output and the gradient
w.r.t. the input are bit for bit those of ``IntQuant``; only the learned scale's gradient, a sum
over the tensor, is added up in another order (a difference in the last bits).

Used only where it pays and is safe: in training (the input requires a gradient), zero-point 0,
Brevitas' default round-to-nearest and clamp, no quantization delay, and not while tracing or
exporting; everywhere else ``IntQuant`` itself runs. Where ``torch.compile`` cannot build its
kernel (no C++ compiler, an unsupported platform) the first call says so in one warning and
training goes on with Brevitas' eager ops. ``WRN1BIT_FUSED_QUANT=0`` turns the fused path off.
"""

from __future__ import annotations

import logging
import os

import torch
from brevitas.core.function_wrapper import Identity, RoundSte, TensorClamp
from brevitas.core.quant import IntQuant

log = logging.getLogger(__name__)

ENV_SWITCH = "WRN1BIT_FUSED_QUANT"


def fake_int_quant(x: torch.Tensor, scale: torch.Tensor, min_int: torch.Tensor, max_int: torch.Tensor) -> torch.Tensor:
    """``clamp(round(x / scale), min_int, max_int) * scale`` with the round's gradient passed
    straight through and the clamp's gradient zero outside [min_int, max_int] (inclusive), as
    Brevitas' ``IntQuant`` with zero-point 0. The bounds are 0-d tensors, not Python floats: with
    float bounds torch 2.13's compiled-graph cache handed one bit width's kernel to another
    (wrong outputs, seen in tests), and ``torch.where`` with scalar bounds is not vectorized."""
    y = x / scale
    y = y + (torch.round(y) - y).detach()  # round to nearest even, identity gradient (round_ste)
    # torch.clamp equals Brevitas' two torch.where for every non-NaN value, gradient included
    y = torch.clamp(y, min_int, max_int)
    return y * scale


class _Compiled:
    """The compiled ``fake_int_quant``, built on first use; ``None`` once it has failed."""

    fn = None
    failed = False

    @classmethod
    def get(cls, probe: torch.Tensor, scale: torch.Tensor, min_int: torch.Tensor, max_int: torch.Tensor):
        if cls.fn is None and not cls.failed:
            fn = torch.compile(fake_int_quant, dynamic=True)
            try:  # compile forward and backward now, on a small copy, where an error can be caught
                x = probe[:2].detach().clone().requires_grad_(True)
                fn(x, scale.detach().clone().requires_grad_(scale.requires_grad), min_int, max_int).sum().backward()
                cls.fn = fn
            except Exception as e:  # noqa: BLE001 - any compiler failure means: run eagerly
                cls.failed = True
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                log.warning("fused quantizers unavailable (%s); training uses Brevitas' eager quantizers", first[:200])
        return cls.fn


def fused_enabled() -> bool:
    return os.environ.get(ENV_SWITCH, "1") != "0"


class FusedIntQuant(IntQuant):
    """Brevitas' ``IntQuant`` whose training forward and backward are one compiled kernel each.

    A drop-in for the ``int_quant`` of a Brevitas quantizer (``int_quant = FusedIntQuant``): same
    constructor, same submodules and state (none), so checkpoints and QONNX export are unchanged.
    For quantizers with a constant zero-point (Brevitas' ``ZeroZeroPoint``): it is checked to be
    zero on the first training call only.
    """

    def __init__(self, narrow_range: bool, signed: bool, input_view_impl: torch.nn.Module,
                 float_to_int_impl: torch.nn.Module = RoundSte(), tensor_clamp_impl: torch.nn.Module = TensorClamp(),
                 quant_delay_steps: int = 0):  # IntQuant's signature: Brevitas' injector reads it
        super().__init__(narrow_range, signed, input_view_impl, float_to_int_impl, tensor_clamp_impl,
                         quant_delay_steps)
        self._bounds = None  # (min_int, max_int), once computed from the constant bit width
        self._zero_point_is_zero = None  # checked once: the quantizers using this have ZeroZeroPoint
        # the formula above is IntQuant's only with its default pieces
        self._fusable = (type(self.float_to_int_impl) is RoundSte and type(self.tensor_clamp_impl) is TensorClamp
                         and type(self.input_view_impl) is Identity
                         and type(self.delay_wrapper.delay_impl).__name__ == "_NoDelay")

    def _use_fused(self, x: torch.Tensor, zero_point: torch.Tensor, bit_width: torch.Tensor) -> bool:
        if not (self._fusable and x.requires_grad and torch.is_grad_enabled() and fused_enabled()):
            return False
        if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export():
            return False
        if bit_width.requires_grad or zero_point.requires_grad or x.dtype not in (torch.float32, torch.float64):
            return False
        if self._zero_point_is_zero is None:  # once, not a device sync per call
            self._zero_point_is_zero = not bool(zero_point.ne(0).any())
        return self._zero_point_is_zero

    def _int_bounds(self, bit_width: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._bounds is None or self._bounds[0].device != x.device or self._bounds[0].dtype != x.dtype:
            # the bit width is a constant (checked above): compute the bounds once per device
            self._bounds = tuple(b.detach().to(x.device, x.dtype).reshape(())
                                 for b in (self.min_int(bit_width), self.max_int(bit_width)))
        return self._bounds

    def forward(self, scale: torch.Tensor, zero_point: torch.Tensor, bit_width: torch.Tensor,
                x: torch.Tensor) -> torch.Tensor:
        if self._use_fused(x, zero_point, bit_width):
            lo, hi = self._int_bounds(bit_width, x)
            fn = _Compiled.get(x, scale, lo, hi)
            if fn is not None:
                return fn(x, scale, lo, hi)
        return super().forward(scale, zero_point, bit_width, x)
