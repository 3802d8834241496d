"""The float head cut off for the host (flows/float_head.py), at the QONNX level."""

from __future__ import annotations

from qonnx.transformation.base import Transformation

from flows.float_head import needs_head, split_head


class SplitFloatHead(Transformation):
    """QONNX level: the float ops between a float graph input and its first quantizer, and that
    quantizer's rounding, go to the model's float head; the model then takes the quantizer's
    integers. Nothing changes where the input is declared integer or feeds an unsigned input
    quantizer directly (flows.transformation.integer_input.IntegerInput)."""

    def apply(self, model):
        plan = needs_head(model)
        if plan is None:
            return model, False
        return split_head(model, plan), False
