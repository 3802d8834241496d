"""Streamlining of the residual 1-bit WRN for finn-plus: transformations in order, to a fixpoint.

The exported QONNX graph (see train/models/wrn.py) is turned, with the transformations of
flows/transformation/ and FINN's own, into a graph of FINN hardware
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

The steps that call these, and the lowering to hardware layers, are in flows/lowering.py.
"""

from __future__ import annotations

import copy

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames, RemoveUnusedTensors, SortGraph
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from flows.float_tail import float_tail_of
from flows.graph import LoweringError
from flows.transformation.checks import RequireNodes
from flows.transformation.pooling import GlobalAveragePoolToSum


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
            # a quantized ReLU's scale in front of a max pool (VGG-style nets: conv, act, pool)
            reorder.MoveMulPastMaxPool(),
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

    model = model.transform(GlobalAveragePoolToSum())
    label = [] if float_tail_of(model) is not None else [InsertTopK(k=1), AbsorbScalarMulAddIntoTopK()]
    # the 1 / (H * W) of a pool in front of a classifier layer moves past it (then into the TopK)
    for t in (MoveScalarLinearPastInvariants(), MoveScalarMulPastMatMul(), CollapseRepeatedMul(), *label,
              InferShapes(), InferDataTypes()):
        model = model.transform(t)
    return model


STREAMLINED_OPS = ("MultiThreshold", "MatMul", "XnorPopcountMatMul", "Im2Col", "Add", "ReduceSum", "Transpose", "Reshape", "TopK", "Concat",
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
