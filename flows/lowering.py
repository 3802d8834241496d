"""The lowering of a QONNX model to FINN hardware layers, as FINN build steps.

Build steps are plain functions ``(model, cfg) -> model``; FINN's builder runs them from a
``DataflowBuildConfig(steps=[...])`` next to FINN's own step names (flows/build.py):

  LOWERING_STEPS = [step_wrn_tidy, step_wrn_streamline, step_wrn_convert_to_hw,
                    "step_create_dataflow_partition", step_wrn_specialize_layers]

``lower_wrn`` runs the same steps directly and returns the graph after each stage, for the
stage-by-stage check (flows/verify.py) and the tests. finn-plus must be imported through
flows.finn_env.import_finn() first (lower_wrn does).
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_data_layouts import InferDataLayouts

from flows.float_head import float_head_of
from flows.float_tail import float_tail_of
from flows.graph import HW_LAYERS, LoweringError, base_op
from flows.streamline import check_streamlined, streamline_body, streamline_head, tidy
from flows.transformation.accumulators import NarrowAccumulatorOutputs
from flows.transformation.binary import (
    BipolarActivationToInt2,
    BipolarToXnorPopcount,
    InferXnorMVAU,
    RequireBinaryConvs,
)
from flows.transformation.float_head import SplitFloatHead
from flows.transformation.float_tail import SplitAtLastIntegerTensor, SplitFloatTail
from flows.transformation.integer_adds import NarrowIntegerAdds
from flows.transformation.integer_input import InputFlattenToHost, InputToNHWC, IntegerInput
from flows.transformation.pooling import (
    AvgPoolConvToStridedConv,
    InferGlobalAccPoolFromReduceSum,
    ReduceMeanToGlobalAveragePool,
)
from flows.transformation.thresholds import SeparateWideThresholds


def step_wrn_tidy(model: ModelWrapper, cfg) -> ModelWrapper:
    """QONNX -> FINN-ONNX with an integer input (the raw pixel, or the input quantizer's
    integers with the float ops in front of it in the float head, flows.float_head) and a
    GlobalAveragePool head; what follows the last integer-valued tensor becomes the float tail
    (flows.float_tail)."""
    from finn.builder.build_dataflow_steps import step_qonnx_to_finn

    model = model.transform(SplitFloatHead())
    model = model.transform(IntegerInput())
    model = step_qonnx_to_finn(model, cfg)
    model = tidy(model)
    model = model.transform(ReduceMeanToGlobalAveragePool())
    model = model.transform(AvgPoolConvToStridedConv())
    model = model.transform(RequireBinaryConvs())
    model = model.transform(BipolarActivationToInt2(keep_xnor_candidates=True))
    model = tidy(model.transform(InferDataLayouts()))
    return tidy(model.transform(SplitAtLastIntegerTensor()))


def step_wrn_streamline(model: ModelWrapper, cfg) -> ModelWrapper:
    """Integer-only graph: MultiThreshold / MatMul / Im2Col / Add / sum pool / TopK; float
    nodes after the last integer tensor go to the float tail (flows.float_tail)."""
    model = streamline_body(model)
    model = streamline_head(model)
    model = model.transform(InputToNHWC())
    model = model.transform(InputFlattenToHost())
    model = tidy(model.transform(InferDataLayouts()))
    model = tidy(model.transform(BipolarToXnorPopcount()))  # W1A1 layers: FINN's xnor-popcount (binaryXnorMode)
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
    for t in (InferXnorMVAU(),  # XnorPopcountMatMul (+ thresholds) -> MVAU in binaryXnorMode
              InferQuantizedMatrixVectorActivation(),  # MatMul (+ following MultiThreshold) -> MVAU
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
    model = model.transform(NarrowAccumulatorOutputs())  # e.g. the stem conv's INT32 -> INT13
    model = model.transform(NarrowIntegerAdds())
    model = model.transform(RoundAndClipThresholds())  # to the narrowed input ranges
    model = tidy(model)
    check_hardware_graph(model)
    return model


def step_wrn_specialize_layers(model: ModelWrapper, cfg) -> ModelWrapper:
    """The dataflow partition's graph, specialized to HLS / RTL layers for cfg's part (FINN's
    step_specialize_layers), every node checked to be a hardware layer with integer streams."""
    from finn.builder.build_dataflow_steps import step_specialize_layers

    prefer_hls_until_folded(model)
    model = step_specialize_layers(model, cfg)
    check_hardware_graph(model)
    return model


def check_hardware_graph(model: ModelWrapper) -> None:
    """Only FINN hardware layers, with integer inputs and outputs (weights/thresholds aside)."""
    for node in model.graph.node:
        if node.op_type == "StreamingDataflowPartition":
            from qonnx.custom_op.registry import getCustomOp

            check_hardware_graph(ModelWrapper(getCustomOp(node).get_nodeattr("model")))
            continue
        if base_op(node.op_type) not in HW_LAYERS or not node.domain.startswith("finn.custom_op.fpgadataflow"):
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


LOWERING_STEPS = [step_wrn_tidy, step_wrn_streamline, step_wrn_convert_to_hw,
                  "step_create_dataflow_partition", step_wrn_specialize_layers]


def build_config(output_dir: str, fpga_part: str = "xc7z020clg400-1", clk_ns: float = 10.0):
    from finn.builder.build_dataflow_config import DataflowBuildConfig

    return DataflowBuildConfig(output_dir=str(output_dir), synth_clk_period_ns=clk_ns, fpga_part=fpga_part,
                               generate_outputs=[], steps=LOWERING_STEPS)


def lower_wrn(qonnx_path, build_dir, cfg=None, finn_dir=None) -> dict[str, ModelWrapper]:
    """Run the WRN steps on an exported QONNX file; return the graph after each stage.

    Keys: "qonnx", "finn" (after step_wrn_tidy), "streamlined", "hw" (after convert_to_hw),
    "dataflow" (the dataflow partition's graph after specialize_layers), "tail" where float
    nodes follow the last integer tensor (flows.float_tail) and "head" where float nodes precede
    the input quantizer (flows.float_head); the host runs those two.
    cfg: a DataflowBuildConfig (its fpga_part picks the specializations); default: a PYNQ-Z2
    config writing under build_dir/out. finn_dir: FINN's working folder (default build_dir/.finn).
    """
    from flows.finn_env import import_finn

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
    df = step_wrn_specialize_layers(df, cfg)
    stages["dataflow"] = df
    for key, part in (("tail", float_tail_of(model)), ("head", float_head_of(model))):
        if part is not None:
            stages[key] = part
    return stages
