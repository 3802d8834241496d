"""Wide activations out of the MVAU: more thresholds than an MVAU should compare at once go to
a standalone Thresholding layer."""

from __future__ import annotations

from onnx import helper
from qonnx.transformation.base import Transformation

# An MVAU compares its accumulators with all thresholds of a channel at once, PE channels at a
# time: PE x (2^k - 1) comparators for k-bit outputs. Up to 4-bit outputs (15 thresholds) that is
# cheap; an 8-bit residual stream's 255 thresholds cost ~16k LUT at PE 16 (measured with yosys on
# WRN-8-3), where a standalone Thresholding_rtl searches them in 8 pipelined steps (~600 LUT).
MAX_FUSED_THRESHOLDS = 15


class SeparateWideThresholds(Transformation):
    """Hardware level: an MVAU with more than ``max_steps`` thresholds per channel becomes an
    MVAU without activation (output: the accumulator, typed as narrow as its range) followed by
    a MultiThreshold with the same thresholds and out_bias, which InferThresholdingLayer then
    lowers to a standalone Thresholding layer.

    Exact: the fused MVAU outputs ActVal + #{t : acc >= t}, which is what the MultiThreshold
    computes from the accumulator. FINN's MVAU estimate leaves the fused comparators out, so its
    folding search does not see their cost; a standalone Thresholding is estimated on its own.
    """

    def __init__(self, max_steps: int = MAX_FUSED_THRESHOLDS):
        super().__init__()
        self.max_steps = max_steps

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "MVAU" or len(node.input) < 3:
                continue
            op = getCustomOp(node)
            thr, w = model.get_initializer(node.input[2]), model.get_initializer(node.input[1])
            if op.get_nodeattr("noActivation") or thr is None or w is None or thr.shape[1] <= self.max_steps:
                continue
            out, thr_name = node.output[0], node.input[2]
            acc = model.make_new_valueinfo_name()
            model.set_tensor_shape(acc, model.get_tensor_shape(out))
            mt = helper.make_node("MultiThreshold", [acc, thr_name], [out], domain="qonnx.custom_op.general",
                                  out_dtype=op.get_nodeattr("outputDataType"), out_scale=1.0,
                                  out_bias=float(op.get_nodeattr("ActVal")), data_layout="NHWC",
                                  name=node.name + "_thresholds")
            graph.node.insert(list(graph.node).index(node) + 1, mt)
            del node.input[2]
            node.output[0] = acc
            op.set_nodeattr("noActivation", 1)
            op.set_nodeattr("ActVal", 0)
            # FINN's own sizing from the weights: accDataType, and (no activation) outputDataType
            model.set_tensor_datatype(acc, op.minimize_accumulator_width(model))
        return model, False
