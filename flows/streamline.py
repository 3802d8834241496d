"""Streamlining and hardware lowering of the residual 1-bit WRN for finn-plus.

The exported QONNX graph (see train/models/wrn.py) is turned into a graph of FINN hardware
layers only, with integer tensors everywhere between the raw input pixels and the class label:

  uint8 NHWC pixels -> [FMPadding -> ConvolutionInputGenerator -> MVAU (1-bit weights, fused
  thresholds up to 4-bit outputs; wider ones, e.g. an 8-bit residual stream, in a standalone
  Thresholding after it)] ... DuplicateStreams at every fork, ElementwiseAdd at every residual add
  followed by a standalone Thresholding, GlobalAccPool (integer sum of the int8 class scores over H x W)
  -> LabelSelect (top-1 class).

The same steps lower Bethge et al.'s ResNetE and BinaryDenseNet (train/models/resnete.py,
densenet.py): bipolar (1-bit) activations as INT2 -1 / +1 (BipolarActivationToInt2), ResNetE's
avgpool 2x2/2 + 1x1 shortcut as one 2x2/2 conv (AvgPoolConvToStridedConv), residual adds typed
as narrow as their sums (NarrowIntegerAdds), concatenations as StreamingConcat and MaxPools, moved
after the sign thresholds, as sliding window + Pool. A full-precision conv (ResNetE's
fp_downsample) is refused by name (RequireBinaryConvs).

What each stage computes, in integers (the accelerator's view):
  * input: the raw uint8 pixel p (the QONNX graph takes p / 255; its input quantizer, with the
    constant scale 1/255, is the identity on such inputs and becomes a scale that streamlining
    folds into the first thresholds);
  * "integer output": the sum over the pooled positions of the quantized int8 class scores,
    i.e. Brevitas' output * H * W / head_scale. In the streamlined graph this is the output of
    the head's ReduceSum, in the hardware graph the output of GlobalAccPool;
  * graph output: the top-1 label (TopK / LabelSelect); the positive final scale
    head_scale / (H * W) is dropped because it cannot change the arg max.

Build steps are plain functions ``(model, cfg) -> model`` and can be listed in a finn-plus
``DataflowBuildConfig(steps=[...])`` next to finn's own step names:

  WRN_STEPS = [step_wrn_tidy, step_wrn_streamline, step_wrn_convert_to_hw,
               "step_create_dataflow_partition", "step_specialize_layers"]

finn-plus must be imported through flows.finn_env.import_finn() first (done by lower_wrn()).
"""

from __future__ import annotations

import copy

import numpy as np
from onnx import helper
from qonnx.core.data_layout import NHWC
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveUnusedTensors, SortGraph
from qonnx.transformation.infer_data_layouts import InferDataLayouts
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes


class LoweringError(RuntimeError):
    """A node of the WRN graph could not be lowered to a FINN hardware layer."""

    def __init__(self, node, message: str):
        self.node_name, self.op_type = node.name, node.op_type
        super().__init__(f"{node.name} ({node.op_type}): {message}")


def lowering_message(model_path, e: LoweringError) -> str:
    """The one line `flows build` and every verify print for a model the flow cannot lower."""
    return f"cannot lower {model_path} to FINN hardware layers: {e}"


# Hardware layers allowed in the dataflow partition (generic names and their specializations).
HW_LAYERS = ("MVAU", "Thresholding", "ConvolutionInputGenerator", "FMPadding", "DuplicateStreams",
             "AddStreams", "ElementwiseAdd", "GlobalAccPool", "Pool", "LabelSelect", "StreamingConcat",
             "StreamingDataWidthConverter", "StreamingFIFO")


def _base_op(op_type: str) -> str:
    for suffix in ("_hls", "_rtl"):
        if op_type.endswith(suffix):
            return op_type[: -len(suffix)]
    return op_type


def _const(model: ModelWrapper, name: str):
    return model.get_initializer(name)


# ----------------------------------------------------------------------------------------------
# Transformations with one job each
# ----------------------------------------------------------------------------------------------

class IntegerInput(Transformation):
    """QONNX level: the input quantizer becomes a constant scale; the input is the raw integer.

    Matches the graph input feeding exactly one unsigned, zero-point-0 ``Quant`` node with a
    scalar constant scale s and b bits. For inputs p * s with p an integer in [0, 2^b - 1] that
    quantizer is the identity, so Quant(x) is replaced by Mul(p, s) and the graph input is
    annotated UINTb: the accelerator then takes the raw pixels.
    """

    def apply(self, model):
        iname = model.graph.input[0].name
        consumers = model.find_consumers(iname)
        if len(consumers) != 1 or consumers[0].op_type != "Quant":
            return model, False
        q = consumers[0]
        scale, zp, bits = (_const(model, t) for t in q.input[1:4])
        attrs = {a.name: helper.get_attribute_value(a) for a in q.attribute}
        if scale is None or zp is None or bits is None or scale.size != 1 or np.any(zp != 0):
            raise LoweringError(q, "the input quantizer needs a constant scalar scale and zero point 0")
        if attrs.get("signed", 1) or attrs.get("narrow", 0):
            raise LoweringError(q, "the input quantizer must be unsigned and not narrow")
        bits = int(bits)
        mul = helper.make_node("Mul", [iname, q.input[1]], [q.output[0]], name=q.name + "_input_scale")
        idx = list(model.graph.node).index(q)
        model.graph.node.remove(q)
        model.graph.node.insert(idx, mul)
        model.set_tensor_datatype(iname, DataType[f"UINT{bits}"])
        return model, False


class ReduceMeanToGlobalAveragePool(Transformation):
    """torch's dynamo exports adaptive_avg_pool2d(x, 1) as ReduceMean over H, W (keepdims)."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "ReduceMean" or len(node.input) < 2:
                continue
            axes = _const(model, node.input[1])
            shape = model.get_tensor_shape(node.input[0])
            keep = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "keepdims"), 1)
            if axes is None or shape is None or len(shape) != 4 or not keep:
                continue
            if sorted(int(a) % 4 for a in axes) != [2, 3]:
                continue
            node.op_type = "GlobalAveragePool"
            del node.input[1:]
            del node.attribute[:]
        return model, False


class InputToNHWC(Transformation):
    """Drop the NCHW->NHWC Transpose at the graph input: the accelerator takes NHWC pixels."""

    def apply(self, model):
        inp = model.graph.input[0]
        consumers = model.find_consumers(inp.name)
        if len(consumers) != 1 or consumers[0].op_type != "Transpose":
            return model, False
        t = consumers[0]
        perm = [helper.get_attribute_value(a) for a in t.attribute if a.name == "perm"]
        if not perm or list(perm[0]) != [0, 2, 3, 1]:
            return model, False
        dt = model.get_tensor_datatype(inp.name)
        nhwc = model.get_tensor_shape(t.output[0])
        for n in model.find_consumers(t.output[0]):
            for i, name in enumerate(n.input):
                if name == t.output[0]:
                    n.input[i] = inp.name
        model.graph.node.remove(t)
        model.set_tensor_shape(inp.name, nhwc)
        model.set_tensor_datatype(inp.name, dt)
        model.set_tensor_layout(inp.name, NHWC)
        return model, True


class GlobalAveragePoolToSum(Transformation):
    """GlobalAveragePool(x) of integer x -> ReduceSum(x) * (1 / (H * W)).

    Keeps the pooled value an exact integer (the sum), with the 1/(H*W) as a scalar Mul that
    streamlining moves on into the TopK.
    """

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if node.op_type != "GlobalAveragePool":
                continue
            if not model.get_tensor_datatype(node.input[0]).is_integer():
                continue  # a float average: part of the float tail (flows.float_tail), on the host
            n, c, h, w = model.get_tensor_shape(node.input[0])
            axes = model.make_new_valueinfo_name()
            model.set_initializer(axes, np.array([2, 3], dtype=np.int64))
            summed = model.make_new_valueinfo_name()
            rsum = helper.make_node("ReduceSum", [node.input[0], axes], [summed], keepdims=1,
                                    name=node.name + "_sum")
            inv = model.make_new_valueinfo_name()
            model.set_initializer(inv, np.array(1.0 / (h * w), dtype=np.float32))
            mul = helper.make_node("Mul", [summed, inv], [node.output[0]], name=node.name + "_mean")
            graph.node.remove(node)
            graph.node.insert(idx, mul)
            graph.node.insert(idx, rsum)
            idt = model.get_tensor_datatype(node.input[0])
            lo, hi = h * w * idt.min(), h * w * idt.max()
            model.set_tensor_datatype(summed, DataType.get_smallest_possible(lo if -lo > hi else hi))
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return model, True
        return model, False


class InferGlobalAccPoolFromReduceSum(Transformation):
    """Transpose(NHWC->NCHW) -> ReduceSum over H, W  ==>  GlobalAccPool on the NHWC stream."""

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if node.op_type != "ReduceSum":
                continue
            axes = _const(model, node.input[1]) if len(node.input) > 1 else None
            if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
                raise LoweringError(node, "only a sum over the spatial axes (2, 3) maps to GlobalAccPool")
            t = model.find_producer(node.input[0])
            perm = [helper.get_attribute_value(a) for a in t.attribute if a.name == "perm"] if t else []
            if t is None or t.op_type != "Transpose" or list(perm[0]) != [0, 3, 1, 2]:
                raise LoweringError(node, "expected an NHWC->NCHW Transpose before the spatial sum")
            idt = model.get_tensor_datatype(t.input[0])
            if not idt.is_integer():
                raise LoweringError(node, f"input is {idt.name}, not an integer")
            n, h, w, c = model.get_tensor_shape(t.input[0])
            out = model.make_new_valueinfo_name()
            model.set_tensor_shape(out, [n, 1, 1, c])
            pool = helper.make_node("GlobalAccPool", [t.input[0]], [out], domain="finn.custom_op.fpgadataflow",
                                    backend="fpgadataflow", NumChannels=c, PE=1, inputDataType=idt.name,
                                    numInputVectors=[n, h, w], name="GlobalAccPool_" + node.name)
            for consumer in model.find_consumers(node.output[0]):
                if consumer.op_type != "Reshape" or model.get_tensor_shape(consumer.output[0]) != [n, c]:
                    raise LoweringError(consumer, "expected a Reshape to (N, classes) after the pool")
                consumer.input[0] = out
            for o in graph.output:  # the sum is the accelerator's output (a float tail follows)
                if o.name == node.output[0]:
                    o.CopyFrom(next(v for v in graph.value_info if v.name == out))
                    graph.value_info.remove(next(v for v in graph.value_info if v.name == out))
            graph.node.insert(idx, pool)
            graph.node.remove(node)
            if not model.find_consumers(t.output[0]):
                graph.node.remove(t)
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return model, True
        return model, False


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


def _bipolar(w) -> bool:
    return w is not None and np.all(np.abs(w) == 1)


class RequireBinaryConvs(Transformation):
    """FINN level (weight quantizers folded): every Conv has +-1 weights and no bias."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "Conv":
                continue
            w = model.get_initializer(node.input[1])
            if not _bipolar(w) or len(node.input) > 2:
                raise LoweringError(node, "full-precision conv (float weights, e.g. ResNetE's model.fp_downsample: "
                                    "true): this flow lowers 1-bit convs only")
        return model, False


class AvgPoolConvToStridedConv(Transformation):
    """AveragePool 2x2/2 -> 1x1 conv (+-1 weights)  ==>  2x2/2 conv with the weights on every
    tap, then Mul 1/4 (ResNetE's downsampling shortcut).

    Exact: sum_c w_oc * (1/4) sum_(2x2) x_c = (1/4) sum_(c, 2x2) w_oc x_c. The conv keeps +-1
    weights (an MVAU after an Im2Col of 2x2 windows, stride 2), the 1/4 is a scalar that
    streamlining moves into the next thresholds.
    """

    def apply(self, model):
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "AveragePool":
                continue
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            consumers = model.find_consumers(node.output[0]) or []
            if (list(attrs.get("kernel_shape", [])) != [2, 2] or list(attrs.get("strides", [])) != [2, 2]
                    or any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0) or len(consumers) != 1
                    or consumers[0].op_type != "Conv"):
                continue
            conv = consumers[0]
            w = model.get_initializer(conv.input[1])
            cattrs = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
            if (w is None or w.shape[2:] != (1, 1) or len(conv.input) > 2 or cattrs.get("group", 1) != 1
                    or any(s != 1 for s in cattrs.get("strides", [1, 1])) or any(cattrs.get("pads", [0]))):
                continue
            if not _bipolar(w):
                raise LoweringError(conv, "full-precision conv (float weights, e.g. ResNetE's model.fp_downsample: "
                                    "true): this flow lowers 1-bit convs only")
            model.set_initializer(conv.input[1], np.tile(w, (1, 1, 2, 2)))
            for a in list(conv.attribute):
                conv.attribute.remove(a)
            conv.attribute.extend([helper.make_attribute("kernel_shape", [2, 2]),
                                   helper.make_attribute("strides", [2, 2]),
                                   helper.make_attribute("pads", [0, 0, 0, 0]),
                                   helper.make_attribute("dilations", [1, 1]),
                                   helper.make_attribute("group", 1)])
            quarter = model.make_new_valueinfo_name()
            model.set_initializer(quarter, np.array(0.25, dtype=np.float32))
            out = conv.output[0]
            mid = model.make_new_valueinfo_name()
            conv.output[0] = mid
            conv.input[0] = node.input[0]
            mul = helper.make_node("Mul", [mid, quarter], [out], name=conv.name + "_avg")
            graph.node.insert(list(graph.node).index(conv) + 1, mul)
            graph.node.remove(node)
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return model, True
        return model, False


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


class RequireNodes(Transformation):
    """Raise LoweringError on the first node that is not one of the allowed op types."""

    def __init__(self, allowed, message: str):
        super().__init__()
        self.allowed, self.message = set(allowed), message

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type not in self.allowed:
                raise LoweringError(node, self.message)
        return model, False


# ----------------------------------------------------------------------------------------------
# Groups of transformations
# ----------------------------------------------------------------------------------------------

def tidy(model: ModelWrapper) -> ModelWrapper:
    from qonnx.transformation.fold_constants import FoldConstants
    from qonnx.transformation.general import RemoveStaticGraphInputs

    for t in (InferShapes(), FoldConstants(), GiveUniqueNodeNames(), GiveReadableTensorNames(),
              InferDataTypes(), RemoveStaticGraphInputs(), RemoveUnusedTensors(), SortGraph()):
        model = model.transform(t)
    return model


def _linear_moves():
    """FINN's linear streamlining: BN to affine, scales/biases through convs into thresholds."""
    from finn.transformation.streamline import absorb, reorder
    from finn.transformation.streamline.collapse_repeated import CollapseRepeatedAdd, CollapseRepeatedMul
    from qonnx.transformation.batchnorm_to_affine import BatchNormToAffine
    from qonnx.transformation.general import ConvertDivToMul, ConvertSubToAdd

    return [ConvertSubToAdd(), ConvertDivToMul(), BatchNormToAffine(),
            absorb.AbsorbScalarBiasIntoMultiThreshold(), reorder.MoveScalarLinearPastInvariants(),
            reorder.MoveAddPastMul(), reorder.MoveScalarAddPastMatMul(), reorder.MoveAddPastConv(),
            reorder.MoveScalarMulPastMatMul(), reorder.MoveScalarMulPastConv(), reorder.MoveAddPastMul(),
            CollapseRepeatedAdd(), CollapseRepeatedMul(), absorb.AbsorbAddIntoMultiThreshold(),
            absorb.FactorOutMulSignMagnitude(), absorb.AbsorbMulIntoMultiThreshold(),
            absorb.Absorb1BitMulIntoMatMul(), absorb.Absorb1BitMulIntoConv()]


def _residual_moves():
    """Scales through the residual topology: x*C + y*C -> (x + y)*C, scalar ops past forks.

    MoveMulPastFork also moves per-channel Muls past forks (one copy per branch, exact): the
    per-output-channel weight scales of the bwn / bwn_learned methods, which FINN's
    FoldQuantWeights leaves as a Mul after the conv. The first conv's output forks into the
    first block's branch and its identity shortcut; each copy is then absorbed into that
    branch's thresholds (AbsorbMulIntoMultiThreshold, the scales being positive).
    """
    from finn.transformation.streamline import reorder

    return [reorder.MoveLinearPastEltwiseAdd(), reorder.MoveScalarLinearPastFork(), reorder.MoveMulPastFork(),
            # BinaryDenseNet: one scale (and zero point) on every input of a concatenation, and
            # its transitions' MaxPool after the thresholds (max commutes with a non-decreasing step)
            reorder.MoveMulPastJoinConcat(), reorder.MoveAddPastJoinConcat(), reorder.MoveMaxPoolPastMultiThreshold()]


def _layout_moves():
    """Transposes left by LowerConvsToMatMul: through thresholds, forks and adds until they cancel."""
    from finn.transformation.streamline import absorb, reorder
    from finn.transformation.streamline.collapse_repeated import CollapseRepeatedTranspose
    from finn.transformation.streamline.remove import RemoveIdentityTranspose

    return [absorb.AbsorbTransposeIntoMultiThreshold(), reorder.MoveTransposePastFork(),
            reorder.MoveTransposePastJoinAdd(), reorder.MoveTransposePastJoinConcat(), CollapseRepeatedTranspose(),
            absorb.AbsorbConsecutiveTransposes(), RemoveIdentityTranspose(), reorder.MakeMaxPoolNHWC()]


def _to_fixpoint(model: ModelWrapper, transformations, max_rounds: int = 64) -> ModelWrapper:
    """Apply the list in order, round after round, until a whole round changes nothing.

    Each round moves a transpose or scale past about one fork / add / concatenation, so deep
    graphs need many rounds (ResNetE-14's layout moves: more than 8); 64 is a cap, not a count.

    Works on a copy (the transformations run in place on it, without ModelWrapper.transform's
    deep copy per call, which dominates the run time on these graphs).
    """
    from qonnx.transformation.remove import RemoveIdentityOps

    model = ModelWrapper(copy.deepcopy(model.model))
    for _ in range(max_rounds):
        before = model.model.SerializeToString()
        for t in transformations + [RemoveIdentityOps()]:
            model = model.transform(t, make_deepcopy=False)
        model = model.transform(InferDataTypes(), make_deepcopy=False)
        if model.model.SerializeToString() == before:
            return model
    return model


def streamline_body(model: ModelWrapper) -> ModelWrapper:
    """Move every scale/bias into thresholds, through forks and residual adds, to a fixpoint.

    Before lowering the convs: linear + residual moves (the shared residual quantizer gives both
    inputs of every Add the same scale, so MoveLinearPastEltwiseAdd applies). After lowering:
    the same plus the layout moves, then thresholds rounded to integers.
    """
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds
    from qonnx.transformation.lower_convs_to_matmul import LowerConvsToMatMul

    model = _to_fixpoint(model, _linear_moves() + _residual_moves())
    model = model.transform(LowerConvsToMatMul())
    model = _to_fixpoint(model, _linear_moves() + _residual_moves() + _layout_moves())
    model = model.transform(RoundAndClipThresholds())
    return model


def streamline_head(model: ModelWrapper) -> ModelWrapper:
    """GlobalAveragePool -> integer sum; the remaining positive scale goes into a TopK (where no
    float tail follows: the label is then the tail's)."""
    from finn.transformation.streamline.absorb import AbsorbScalarMulAddIntoTopK
    from finn.transformation.streamline.collapse_repeated import CollapseRepeatedMul
    from finn.transformation.streamline.reorder import MoveScalarLinearPastInvariants, MoveScalarMulPastMatMul
    from qonnx.transformation.insert_topk import InsertTopK

    from flows.float_tail import float_tail_of

    model = model.transform(GlobalAveragePoolToSum())
    label = [] if float_tail_of(model) is not None else [InsertTopK(k=1), AbsorbScalarMulAddIntoTopK()]
    # the 1 / (H * W) of a pool in front of a classifier layer moves past it (then into the TopK)
    for t in (MoveScalarLinearPastInvariants(), MoveScalarMulPastMatMul(), CollapseRepeatedMul(), *label,
              InferShapes(), InferDataTypes()):
        model = model.transform(t)
    return model


STREAMLINED_OPS = ("MultiThreshold", "MatMul", "Im2Col", "Add", "ReduceSum", "Transpose", "Reshape", "TopK", "Concat",
                   "MaxPoolNHWC")


def check_streamlined(model: ModelWrapper) -> None:
    """Every op is one FINN can lower, and every tensor but the graph input's scale is integer."""
    model.transform(RequireNodes(STREAMLINED_OPS, "left over after streamlining (a float op FINN cannot lower)"))
    for node in model.graph.node:
        for name in node.input:
            if model.get_initializer(name) is not None:
                continue
            if not model.get_tensor_datatype(name).is_integer():
                raise LoweringError(node, f"input {name} is {model.get_tensor_datatype(name).name}, not integer")


# ----------------------------------------------------------------------------------------------
# Build steps: (model, cfg) -> model
# ----------------------------------------------------------------------------------------------

def step_wrn_tidy(model: ModelWrapper, cfg) -> ModelWrapper:
    """QONNX -> FINN-ONNX with an integer (raw pixel) input and a GlobalAveragePool head; what
    follows the last integer-valued tensor becomes the float tail (flows.float_tail)."""
    from finn.builder.build_dataflow_steps import step_qonnx_to_finn

    from flows.float_tail import SplitAtLastIntegerTensor

    model = model.transform(IntegerInput())
    model = step_qonnx_to_finn(model, cfg)
    model = tidy(model)
    model = model.transform(ReduceMeanToGlobalAveragePool())
    model = model.transform(AvgPoolConvToStridedConv())
    model = model.transform(RequireBinaryConvs())
    model = model.transform(BipolarActivationToInt2())
    model = tidy(model.transform(InferDataLayouts()))
    return tidy(model.transform(SplitAtLastIntegerTensor()))


def step_wrn_streamline(model: ModelWrapper, cfg) -> ModelWrapper:
    """Integer-only graph: MultiThreshold / MatMul / Im2Col / Add / sum pool / TopK; float
    nodes after the last integer tensor go to the float tail (flows.float_tail)."""
    from flows.float_tail import SplitFloatTail

    model = streamline_body(model)
    model = streamline_head(model)
    model = model.transform(InputToNHWC())
    model = tidy(model.transform(InferDataLayouts()))
    model = tidy(model.transform(SplitFloatTail()))
    check_streamlined(model)
    return model


def step_wrn_convert_to_hw(model: ModelWrapper, cfg) -> ModelWrapper:
    """Streamlined graph -> FINN hardware layers; raises LoweringError on any node left."""
    from finn.transformation.fpgadataflow.convert_to_hw.concat import InferConcatLayer
    from finn.transformation.fpgadataflow.convert_to_hw.conv_inp_gen import InferConvInpGen
    from finn.transformation.fpgadataflow.convert_to_hw.duplicate_streams import InferDuplicateStreamsLayer
    from finn.transformation.fpgadataflow.convert_to_hw.elementwise_binary_operation import (
        InferElementwiseBinaryOperation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.label_select import InferLabelSelectLayer
    from finn.transformation.fpgadataflow.convert_to_hw.pool import InferPool
    from finn.transformation.fpgadataflow.convert_to_hw.quantized_matrix_vector_activation import (
        InferQuantizedMatrixVectorActivation,
    )
    from finn.transformation.fpgadataflow.convert_to_hw.thresholding import InferThresholdingLayer
    from finn.transformation.move_reshape import RemoveCNVtoFCFlatten
    from finn.transformation.streamline.absorb import AbsorbConsecutiveTransposes
    from finn.transformation.streamline.round_thresholds import RoundAndClipThresholds

    only_add = lambda m, n: n.op_type == "Add"  # noqa: E731  (integer residual adds only)
    for t in (InferQuantizedMatrixVectorActivation(),  # MatMul (+ following MultiThreshold) -> MVAU
              SeparateWideThresholds(),  # e.g. an 8-bit residual stream's 255 thresholds
              InferThresholdingLayer(),  # MultiThresholds after the residual adds
              InferPool(),  # BinaryDenseNet's MaxPool -> Im2Col + Pool (before the Im2Cols are lowered)
              InferConvInpGen(),  # Im2Col -> FMPadding + ConvolutionInputGenerator
              InferElementwiseBinaryOperation(only_add),
              InferGlobalAccPoolFromReduceSum(),
              InferLabelSelectLayer(),
              InferDuplicateStreamsLayer(),
              InferConcatLayer(),  # BinaryDenseNet's concatenations (NHWC, last axis)
              AbsorbConsecutiveTransposes(),
              RemoveCNVtoFCFlatten()):
        model = model.transform(t)
        model = model.transform(InferDataLayouts())
    model = model.transform(NarrowIntegerAdds())
    model = model.transform(RoundAndClipThresholds())  # to the narrowed input ranges
    model = tidy(model)
    check_hardware_graph(model)
    return model


def check_hardware_graph(model: ModelWrapper) -> None:
    """Only FINN hardware layers, with integer inputs and outputs (weights/thresholds aside)."""
    for node in model.graph.node:
        if node.op_type == "StreamingDataflowPartition":
            from qonnx.custom_op.registry import getCustomOp

            check_hardware_graph(ModelWrapper(getCustomOp(node).get_nodeattr("model")))
            continue
        if _base_op(node.op_type) not in HW_LAYERS or not node.domain.startswith("finn.custom_op.fpgadataflow"):
            raise LoweringError(node, "not lowered to a FINN hardware layer")
        for name in list(node.input) + list(node.output):
            if model.get_initializer(name) is not None:
                continue
            dt = model.get_tensor_datatype(name)
            if not dt.is_integer():
                raise LoweringError(node, f"tensor {name} is {dt.name}, not integer")


def prefer_hls_until_folded(model: ModelWrapper) -> None:
    """Let FINN specialize to its HLS layers even where this project registered an RTL one.

    FINN's SetFolding only folds op types it knows (DuplicateStreams_hls, ...); hw.custom_op
    registers DuplicateStreams_rtl, GlobalAccPool_rtl and LabelSelect_rtl in FINN's registry,
    which FINN's specialize would otherwise pick and SetFolding then leave unfolded. The
    project's RTL comes in after folding (flows.build.use_project_rtl)."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        if node.op_type in ("DuplicateStreams", "GlobalAccPool", "LabelSelect"):
            op = getCustomOp(node)
            if not op.get_nodeattr("preferred_impl_style"):
                op.set_nodeattr("preferred_impl_style", "hls")


WRN_STEPS = [step_wrn_tidy, step_wrn_streamline, step_wrn_convert_to_hw,
             "step_create_dataflow_partition", "step_specialize_layers"]


def build_config(output_dir: str, fpga_part: str = "xc7z020clg400-1", clk_ns: float = 10.0):
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    return DataflowBuildConfig(output_dir=str(output_dir), synth_clk_period_ns=clk_ns, fpga_part=fpga_part,
                               generate_outputs=[], steps=WRN_STEPS)


def lower_wrn(qonnx_path, build_dir, cfg=None, finn_dir=None) -> dict[str, ModelWrapper]:
    """Run the WRN steps on an exported QONNX file; return the graph after each stage.

    Keys: "qonnx", "finn" (after step_wrn_tidy), "streamlined", "hw" (after convert_to_hw),
    "dataflow" (the dataflow partition's graph after specialize_layers), and "tail" where float
    nodes follow the last integer tensor (flows.float_tail; the host runs them).
    cfg: a DataflowBuildConfig (its fpga_part picks the specializations); default: a PYNQ-Z2
    config writing under build_dir/out. finn_dir: FINN's working folder (default build_dir/.finn).
    """
    from flows.finn_env import import_finn
    from flows.float_tail import float_tail_of

    steps = import_finn(finn_dir or f"{build_dir}/.finn")

    cfg = cfg or build_config(f"{build_dir}/out")
    stages = {"qonnx": ModelWrapper(str(qonnx_path))}
    model = step_wrn_tidy(ModelWrapper(str(qonnx_path)), cfg)
    stages["finn"] = model
    model = step_wrn_streamline(model, cfg)
    stages["streamlined"] = model
    model = step_wrn_convert_to_hw(model, cfg)
    stages["hw"] = model
    # every node is a hardware layer (checked above), so the partition is the whole graph
    df = steps.step_create_dataflow_partition(model, cfg)
    if len(df.graph.node) != len(model.graph.node):
        left = {n.name for n in model.graph.node} - {n.name for n in df.graph.node}
        raise RuntimeError(f"nodes left outside the dataflow partition: {sorted(left)}")
    prefer_hls_until_folded(df)
    df = steps.step_specialize_layers(df, cfg)
    check_hardware_graph(df)
    stages["dataflow"] = df
    tail = float_tail_of(model)
    if tail is not None:
        stages["tail"] = tail
    return stages
