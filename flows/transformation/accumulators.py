"""MVAUs without activation output their accumulator as narrow as its range."""

from __future__ import annotations

from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes


class NarrowAccumulatorOutputs(Transformation):
    """Hardware level: an MVAU without activation outputs its accumulator typed by the range its
    weights and input type allow (FINN's own minimize_accumulator_width), not the INT32 that
    streamlining leaves on an integer MatMul.

    Why: WRN's stem conv feeds a fork to two Thresholding layers (the block's 2-bit activation
    and the 8-bit residual stream); left at INT32 its stream, the fork and both Thresholdings
    compare 32-bit words where 13 bits hold every value. Exact: FINN sizes the type from the
    extremes of the dot products, so no accumulator value is cut. An MVAU that
    SeparateWideThresholds split is already narrow; one whose output is the graph output is
    left to FINN's rule (a multiple of 8 bits).
    """

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        changed = False
        for node in model.graph.node:
            if node.op_type != "MVAU" or model.get_initializer(node.input[1]) is None:
                continue
            op = getCustomOp(node)
            if not op.get_nodeattr("noActivation"):
                continue
            before = op.get_nodeattr("outputDataType")
            narrow = op.minimize_accumulator_width(model)
            if narrow.name != before:
                model.set_tensor_datatype(node.output[0], DataType[narrow.name])
                changed = True
        if changed:
            model = model.transform(InferDataTypes())
        return model, False
