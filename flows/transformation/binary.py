"""1-bit layers as this flow lowers them: +-1 conv weights required, sign activations as INT2."""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from flows.graph import LoweringError


def is_bipolar(w) -> bool:
    return w is not None and np.all(np.abs(w) == 1)


class BipolarActivationToInt2(Transformation):
    """FINN level: a bipolar MultiThreshold (sign activation) outputs the INT2 values -1 / +1.

    FINN turns Brevitas' BipolarQuant into a MultiThreshold with one threshold t per channel,
    out_scale 2 and out_bias -1 (count in {0, 1} -> {-1, +1}); FINN's thresholding layer takes
    out_scale 1 only, and its bipolar path is the xnor-popcount MVAU (binaryXnorMode), which this
    project's RTL MVU does not implement. The same function with out_scale 1: two equal
    thresholds [t, t] count 0 or 2, out_bias -1 gives -1 or +1, exactly the bipolar values, typed
    INT2. Downstream every conv then sees a plain 2-bit signed input (+-1 only) and 1-bit weights.
    """

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        for node in model.graph.node:
            if node.op_type != "MultiThreshold":
                continue
            op = getCustomOp(node)
            if op.get_nodeattr("out_dtype") != "BIPOLAR":
                continue
            if op.get_nodeattr("out_scale") != 2.0 or op.get_nodeattr("out_bias") != -1.0:
                raise LoweringError(node, "a bipolar MultiThreshold must have out_scale 2 and out_bias -1")
            t = model.get_initializer(node.input[1])
            if t is None or t.shape[-1] != 1:
                raise LoweringError(node, "a bipolar MultiThreshold must have one constant threshold per channel")
            model.set_initializer(node.input[1], np.repeat(t, 2, axis=-1))
            op.set_nodeattr("out_scale", 1.0)
            op.set_nodeattr("out_dtype", "INT2")
            model.set_tensor_datatype(node.output[0], DataType["INT2"])
        return model, False


class RequireBinaryConvs(Transformation):
    """FINN level (weight quantizers folded): every Conv has quantized weights (+-1, or the
    integers of a wider weight quantizer, e.g. FINN's CNV-W2A2, which stays FINN's HLS MVAU) and
    no bias."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "Conv":
                continue
            w = model.get_initializer(node.input[1])
            quantized = is_bipolar(w) or (w is not None and model.get_tensor_datatype(node.input[1]).is_integer()
                                          and np.array_equal(w, np.rint(w)))
            if not quantized or len(node.input) > 2:
                raise LoweringError(node, "full-precision conv (float weights, e.g. ResNetE's model.fp_downsample: "
                                    "true): this flow lowers convs with quantized weights only")
        return model, False
