"""1-bit layers as this flow lowers them: quantized conv weights required; sign (bipolar)
activations either as FINN's xnor-popcount (BINARY 0/1 into an MVAU in binaryXnorMode) where
every use of them is a binary-weight matrix product followed by thresholds, or as INT2 -1 / +1."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes

from flows.graph import LoweringError


def is_bipolar(w) -> bool:
    return w is not None and np.all(np.abs(w) == 1)


# ops that pass a bipolar tensor on unchanged in value (a max of +-1 values is one of them)
PASS_THROUGH = ("MaxPool", "MaxPoolNHWC", "Transpose", "Reshape", "Flatten", "Im2Col")
MATRIX_OPS = ("MatMul", "Gemm", "Conv")


def _unpadded(node) -> bool:
    """A Conv / Im2Col that adds no padding (a padded 0 is no bipolar value)."""
    for a in node.attribute:
        if a.name in ("pads", "pad_amount") and any(helper.get_attribute_value(a)):
            return False
    return True


def bipolar_uses(model, tensor: str) -> list | None:
    """The matrix ops that take ``tensor`` (through max pools, layout ops and unpadded sliding
    windows), or None where some use is anything else (an add, a concat, a padded conv, the
    graph output)."""
    found, todo = [], [tensor]
    while todo:
        t = todo.pop()
        if t in [o.name for o in model.graph.output]:
            return None
        for c in model.find_consumers(t) or []:
            if c.op_type in MATRIX_OPS and c.input[0] == t and _unpadded(c):
                found.append(c)
            elif c.op_type in PASS_THROUGH and _unpadded(c):
                todo.append(c.output[0])
            else:
                return None
    return found or None


def _is_bipolar_mt(model, node) -> bool:
    from qonnx.custom_op.registry import getCustomOp

    return node.op_type == "MultiThreshold" and getCustomOp(node).get_nodeattr("out_dtype") == "BIPOLAR"


class BipolarActivationToInt2(Transformation):
    """FINN level: a bipolar MultiThreshold (sign activation) outputs the INT2 values -1 / +1.

    FINN turns Brevitas' BipolarQuant into a MultiThreshold with one threshold t per channel,
    out_scale 2 and out_bias -1 (count in {0, 1} -> {-1, +1}); FINN's thresholding layer takes
    out_scale 1 only, and its bipolar path, the xnor-popcount MVAU (binaryXnorMode), needs every
    use of the sign to be an unpadded matrix product (BipolarToXnorPopcount, for the signs that
    only feed such). For the others, the same function with out_scale 1: two equal
    thresholds [t, t] count 0 or 2, out_bias -1 gives -1 or +1, exactly the bipolar values, typed
    INT2. Downstream every conv then sees a plain 2-bit signed input (+-1 only) and 1-bit weights.

    keep_xnor_candidates=True leaves alone the bipolar activations that only feed matrix products
    (``bipolar_uses``): BipolarToXnorPopcount decides on them after streamlining.
    """

    def __init__(self, keep_xnor_candidates: bool = False):
        super().__init__()
        self.keep_xnor_candidates = keep_xnor_candidates

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        iname = model.graph.input[0].name
        if model.get_tensor_datatype(iname) == DataType["BIPOLAR"] and not (
                self.keep_xnor_candidates and bipolar_uses(model, iname)):
            model.set_tensor_datatype(iname, DataType["INT2"])  # the host's +-1 (flows.float_head)
        for node in model.graph.node:
            if not _is_bipolar_mt(model, node):
                continue
            if self.keep_xnor_candidates and bipolar_uses(model, node.output[0]):
                continue
            op = getCustomOp(node)
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


class BipolarToXnorPopcount(Transformation):
    """Streamlined level: bipolar activations b = 2u - 1 as their bits u (BINARY), each matrix
    product taking them as FINN's XnorPopcountMatMul of u and the weight bits (w + 1) / 2.

    With K inputs, popcount(xnor(u, w01)) = P and b . w = 2P - K, so the thresholds t of the
    MultiThreshold after the product become ceil((t + K) / 2) on P (FINN's ConvertBipolarMatMulToXnorPopcount
    inserts the 2P - K as Mul / Add nodes instead, which a last layer without thresholds would
    leave in the float tail). Applied where every use of the activation is a +-1-weight MatMul
    followed by a MultiThreshold (``bipolar_uses``); every other bipolar activation becomes INT2
    (BipolarActivationToInt2). A bipolar graph input (a float head's sign quantizer) becomes
    BINARY: the host passes its bits."""

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        iname = model.graph.input[0].name
        sources = [n for n in model.graph.node if _is_bipolar_mt(model, n)]
        if model.get_tensor_datatype(iname) == DataType["BIPOLAR"]:
            sources.append(None)
        for src in sources:
            t = iname if src is None else src.output[0]
            uses = self._convertible(model, t)
            if uses is None:
                continue
            if src is None:
                model.set_tensor_datatype(iname, DataType["BINARY"])
            else:
                op = getCustomOp(src)
                op.set_nodeattr("out_dtype", "BINARY")
                op.set_nodeattr("out_scale", 1.0)
                op.set_nodeattr("out_bias", 0.0)
            for mm, mt in uses:
                w = model.get_initializer(mm.input[1])
                k = w.shape[0]
                model.set_initializer(mm.input[1], ((w + 1) / 2).astype(np.float32))
                model.set_tensor_datatype(mm.input[1], DataType["BINARY"])
                mm.op_type, mm.domain = "XnorPopcountMatMul", "qonnx.custom_op.general"
                thr = model.get_initializer(mt.input[1])
                # P is an integer: P >= (t + K) / 2 exactly where P >= ceil((t + K) / 2)
                model.set_initializer(mt.input[1], np.ceil((thr.astype(np.float64) + k) / 2).astype(np.float32))
        model = model.transform(BipolarActivationToInt2())  # the bipolar activations left
        return model.transform(InferDataTypes()), False

    @staticmethod
    def _convertible(model, tensor: str):
        """[(MatMul, its MultiThreshold)] for every use of ``tensor``, or None."""
        uses = bipolar_uses(model, tensor)
        if not uses:
            return None
        pairs = []
        for mm in uses:
            consumers = model.find_consumers(mm.output[0]) or []
            w = model.get_initializer(mm.input[1])
            if mm.op_type != "MatMul" or not is_bipolar(w) or len(consumers) != 1 \
                    or consumers[0].op_type != "MultiThreshold" or model.get_initializer(consumers[0].input[1]) is None:
                return None
            pairs.append((mm, consumers[0]))
        return pairs


class InferXnorMVAU(Transformation):
    """FINN's InferBinaryMatrixVectorActivation (XnorPopcountMatMul + MultiThreshold -> MVAU in
    binaryXnorMode), with the MVAU's ActVal taken from the thresholds' out_bias: FINN sets the
    output type's minimum, which is the out_bias for BINARY / BIPOLAR outputs but not for a sign
    kept as INT2 (-1 / +1: out_bias -1, minimum -2)."""

    def apply(self, model):
        from finn.transformation.fpgadataflow.convert_to_hw.binary_matrix_vector_activation import (
            InferBinaryMatrixVectorActivation,
        )
        from qonnx.custom_op.registry import getCustomOp

        bias = {}
        for node in model.graph.node:
            if node.op_type == "XnorPopcountMatMul":
                consumers = model.find_consumers(node.output[0]) or []
                if len(consumers) == 1 and consumers[0].op_type == "MultiThreshold":
                    bias[consumers[0].output[0]] = getCustomOp(consumers[0]).get_nodeattr("out_bias")
        model = model.transform(InferBinaryMatrixVectorActivation())
        for node in model.graph.node:
            if node.op_type == "MVAU" and node.output[0] in bias:
                b = bias[node.output[0]]
                if not float(b).is_integer():
                    raise LoweringError(node, f"thresholds with a non-integer out_bias {b}")
                getCustomOp(node).set_nodeattr("ActVal", int(b))
        return model, False
