"""Residual adds typed as narrow as their sums."""

from __future__ import annotations

from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes


def smallest_integer_type(lo: int, hi: int) -> DataType:
    """The narrowest INTk / UINTk holding every integer in [lo, hi]."""
    for k in range(1, 33):
        if lo >= 0 and hi <= 2 ** k - 1:
            return DataType[f"UINT{k}"]
        if k > 1 and lo >= -(2 ** (k - 1)) and hi <= 2 ** (k - 1) - 1:
            return DataType[f"INT{k}"]
    raise ValueError(f"no integer type of at most 32 bits holds {lo}..{hi}")


class NarrowIntegerAdds(Transformation):
    """Hardware level: every ElementwiseAdd of two integer streams outputs the narrowest type
    that holds every sum (FINN types a streamlined Add INT32), e.g. INT4 + INT4 -> INT5.

    Its consumers then see the true width: ResNetE's downsampling shortcut is an MVAU on the
    residual stream, and MVAUs take at most 8-bit inputs; thresholds are clipped to the new input
    range afterwards (step_wrn_convert_to_hw). Exact: no sum of the inputs' ranges is cut.
    """

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        changed = False
        for node in model.graph.node:
            if node.op_type != "ElementwiseAdd" or any(model.get_initializer(i) is not None for i in node.input):
                continue
            a, b = (model.get_tensor_datatype(i) for i in node.input[:2])
            if not (a.is_integer() and b.is_integer()) or DataType["BIPOLAR"] in (a, b):
                continue
            dt = smallest_integer_type(int(a.min() + b.min()), int(a.max() + b.max()))
            op = getCustomOp(node)
            if op.get_nodeattr("out_dtype") != dt.name:
                op.set_nodeattr("out_dtype", dt.name)
                model.set_tensor_datatype(node.output[0], dt)
                changed = True
        if changed:
            model = model.transform(InferDataTypes())
        return model, False
