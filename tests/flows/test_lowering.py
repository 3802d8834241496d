"""The exported WRN lowers completely to FINN hardware layers, bit-exact with Brevitas.

Small WRNs (1 input channel, 12x12 images): the depth-8 WRN (identity block, then two
downsampling blocks with 1-bit 1x1 stride-2 conv shortcuts) and a one-stage variant without
downsampling (two identity-shortcut blocks at 16 channels, pooled over 12x12), each with 1-
(bipolar), 2- and 4-bit activations; and the depth-8 WRN with each binary-weight method (per-channel BWN scales,
learned or computed, and Bethge's unscaled sign); and Bethge et al.'s architectures with 1-bit
activations (tests.fixtures.warmed_bethge: ResNetE with its average-pool + 1x1-conv downsampling
shortcut, BinaryDenseNet with concatenations and MaxPool transitions). No Vivado needed: finn-plus'
python execution of the generic hardware layers.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from flows.exactness import CHECKED_STAGES, check_exactness, summary
from flows.graph import LoweringError
from flows.lowering import lower_wrn
from flows.transformation.thresholds import MAX_FUSED_THRESHOLDS
from tests.fixtures import pattern_images, spread_learned_scales, warmed_bethge
from train.export import export_qonnx
from train.models import build_model
from train.models.layers import Layers

HW = dict(input_bits=8, residual_bits=4, head_bits=8, shortcut="conv")
SIZE, IMAGES = 12, 10
# XnorPopcountMatMul: a W1A1 layer whose sign inputs only feed unpadded products (flows.transformation.binary)
STREAMLINED = ("MultiThreshold", "MatMul", "XnorPopcountMatMul", "Im2Col", "Add", "ReduceSum", "Transpose", "Reshape",
               "TopK")
# What the dataflow partition may hold after specialize_layers (1-bit MVAUs are HLS-only).
ALLOWED = {"MVAU_hls", "Thresholding_rtl", "Thresholding_hls", "ConvolutionInputGenerator_rtl",
           "ConvolutionInputGenerator_hls", "FMPadding_rtl", "FMPadding_hls", "DuplicateStreams_hls",
           "ElementwiseAdd_hls", "AddStreams_hls", "GlobalAccPool_hls", "LabelSelect_hls"}


def small_wrn(variant: str, act_bits: int, seed: int = 0, weight_quant: str = "he_const", head_bn_affine=False,
              residual_bits: int = HW["residual_bits"]):
    """depth8: WRN-8-1 (with downsampling). stage1: two identity blocks, no downsampling."""
    torch.manual_seed(seed)
    depth = 8 if variant == "depth8" else 14
    m = build_model(dict(depth=depth, width=1, in_channels=1, num_classes=10, act_bits=act_bits,
                         weight_quant=weight_quant, head_bn_affine=head_bn_affine,
                         **{**HW, "residual_bits": residual_bits}))
    if variant == "stage1":  # keep the first stage's blocks only, and a head for its 16 channels
        layers = Layers(m.cfg)
        m.blocks = m.blocks[:2]
        m.head_bn, m.head_relu, m.head_conv = layers.bn(16), layers.relu(), layers.conv(16, 10, 1)
    m.train()
    x, _ = pattern_images(64, SIZE, 10, seed)
    with torch.no_grad():  # BN statistics and quantizer scales away from their init
        for i in range(0, 64, 16):
            m(torch.from_numpy(x[i:i + 16, None]).float() / 255)
    spread_learned_scales(m, seed)  # bwn_learned: scales no longer mean |w|, as after training
    if head_bn_affine:  # learned per-class scales of both signs (a negative one flips the class)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            m.head_bn_out.weight.copy_(torch.randn(10, generator=g) * 2)
            m.head_bn_out.bias.copy_(torch.randn(10, generator=g))
    return m.eval()


@functools.lru_cache(maxsize=None)
def lowered(variant: str, act_bits: int, root: str, weight_quant: str = "he_const", head_bn_affine=False,
            residual_bits: int = HW["residual_bits"]):
    m = small_wrn(variant, act_bits, weight_quant=weight_quant, head_bn_affine=head_bn_affine,
                  residual_bits=residual_bits)
    name = (f"{variant}_a{act_bits}_r{residual_bits}" + ("" if weight_quant == "he_const" else f"_{weight_quant}")
            + ("_headaffine" if head_bn_affine else ""))
    path = export_qonnx(m, (1, SIZE, SIZE), Path(root) / f"{name}.onnx")
    return m, lower_wrn(path, f"{root}/{name}")


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    torch.set_num_threads(1)
    return str(tmp_path_factory.mktemp("lowering"))


def eval_images():
    x, _ = pattern_images(IMAGES, SIZE, 10, seed=7)
    return torch.from_numpy(x[:, None])


def qonnx_reference(stages, x_uint8):
    """The QONNX stage run by qonnx on pixels / 255; the integers its input quantizer makes of them."""
    from flows.reference import input_quantizer, run_qonnx_reference

    q = stages["qonnx"]
    iq = input_quantizer(q)
    p = iq.to_integers(np.asarray(x_uint8, dtype=np.float32) / 255)
    return run_qonnx_reference(q, iq.to_floats(p), iq.scale), p


def exactness(m, stages, x_uint8, checked=CHECKED_STAGES):
    """Every checked stage against the QONNX model, and the QONNX model against Brevitas."""
    from flows.exactness import brevitas_reference, compare_with_brevitas

    ref, p = qonnx_reference(stages, x_uint8)
    results = check_exactness(ref, {k: stages[k] for k in checked}, p)
    results["brevitas"] = compare_with_brevitas(ref, brevitas_reference(m, p * ref.input_scale))
    return results


# the default suite lowers two of the ten (the default model's shape, and a 1-bit stage model)
LOWERING_GRID = [
    pytest.param(variant, *case, marks=() if (variant, case) in {("depth8", (2, True, 4)), ("stage1", (1, False, 4))}
                 else pytest.mark.slow)
    for variant in ("depth8", "stage1")
    for case in [(2, False, 4), (4, False, 4), (2, True, 4), (1, False, 4), (2, True, 8)]
]


@pytest.mark.parametrize("variant,act_bits,head_bn_affine,residual_bits", LOWERING_GRID)
def test_lowers_completely_and_exactly(root, variant, act_bits, head_bn_affine, residual_bits):
    from qonnx.custom_op.registry import getCustomOp

    m, stages = lowered(variant, act_bits, root, head_bn_affine=head_bn_affine, residual_bits=residual_bits)
    assert "Conv" in {n.op_type for n in stages["finn"].graph.node}  # each stage is its own graph
    assert {n.op_type for n in stages["streamlined"].graph.node} <= set(STREAMLINED)
    df = stages["dataflow"]
    ops = [n.op_type for n in df.graph.node]
    assert set(ops) <= ALLOWED, set(ops) - ALLOWED
    n_blocks = len(m.blocks)
    assert ops.count("ElementwiseAdd_hls") == n_blocks  # one integer add per residual block
    assert ops.count("DuplicateStreams_hls") == n_blocks  # one fork per block (shortcut / identity)
    assert ops.count("GlobalAccPool_hls") == ops.count("LabelSelect_hls") == 1
    n_convs = sum(isinstance(mod, torch.nn.Conv2d) for mod in m.modules())
    assert ops.count("MVAU_hls") == n_convs
    for name in (df.graph.input[0].name, df.graph.output[0].name):
        assert df.get_tensor_datatype(name).is_integer()
    assert df.get_tensor_datatype(df.graph.input[0].name).name == "UINT8"  # raw pixels, NHWC
    fused = [df.get_initializer(n.input[2]).shape[1] for n in df.graph.node if n.op_type == "MVAU_hls"
             and len(n.input) > 2]
    assert fused and max(fused) <= MAX_FUSED_THRESHOLDS
    standalone = [getCustomOp(n).get_nodeattr("numSteps") for n in df.graph.node if n.op_type.startswith("Thresh")]
    assert 2 ** HW["head_bits"] - 1 in standalone  # the int8 class scores' thresholds, after the head's MVAU
    # bit-exact against the QONNX model (and it against Brevitas) at every stage the python executor can run
    results = exactness(m, stages, eval_images())
    assert all(r.passed for r in results.values()), summary(results)
    assert all(r.images == IMAGES for r in results.values())


@pytest.mark.parametrize("weight_quant", [pytest.param("bwn", marks=pytest.mark.slow),  # he_const: the test above
                                          pytest.param("bwn_learned", marks=pytest.mark.slow), "sign"])
def test_every_weight_method_lowers_to_bipolar_weights_exactly(root, weight_quant):
    """The per-channel weight scales (a Mul after each conv once FINN folds the BipolarQuant) end
    up in the following thresholds: the hardware holds +-1 weights only, and every stage equals
    Brevitas in integers."""
    from qonnx.custom_op.registry import getCustomOp

    m, stages = lowered("depth8", 2, root, weight_quant)
    q = [n for n in stages["qonnx"].graph.node if n.op_type == "BipolarQuant"]
    scales = [stages["qonnx"].get_initializer(n.input[1]) for n in q]
    per_channel = [s for s in scales if s is not None and s.size > 1]
    assert len(per_channel) == (10 if weight_quant.startswith("bwn") else 0)  # what is being folded
    assert {n.op_type for n in stages["streamlined"].graph.node} <= set(STREAMLINED)  # no Mul left
    df = stages["dataflow"]
    ops = [n.op_type for n in df.graph.node]
    assert set(ops) <= ALLOWED, set(ops) - ALLOWED
    mvaus = [n for n in df.graph.node if n.op_type == "MVAU_hls"]
    assert len(mvaus) == sum(isinstance(mod, torch.nn.Conv2d) for mod in m.modules()) == 10
    for n in mvaus:
        assert getCustomOp(n).get_nodeattr("weightDataType") == "BIPOLAR"
        assert set(np.unique(df.get_initializer(n.input[1])).tolist()) == {-1.0, 1.0}
    results = exactness(m, stages, eval_images())
    assert all(r.passed and r.images == IMAGES for r in results.values()), summary(results)


def test_mismatch_names_the_first_divergent_node(root):
    from qonnx.core.modelwrapper import ModelWrapper

    m, stages = lowered("depth8", 2, root)
    hw = ModelWrapper(stages["hw"].model, make_deepcopy=True)  # tamper with the thresholds of one layer
    target = next(n for n in hw.graph.node if n.op_type == "MVAU" and len(n.input) == 3)
    thr = hw.get_initializer(target.input[2])
    hw.set_initializer(target.input[2], thr + 3)
    r = exactness(m, {"qonnx": stages["qonnx"], "hw": hw}, eval_images()[:3], checked=("hw",))["hw"]
    assert not r.passed
    assert r.mismatches[0]["first_divergent_node"] == f"{target.name} (MVAU)"
    mm = r.mismatches[0]
    diff = max(abs(a - b) for a, b in zip(mm["integers"], mm["ref_integers"]))
    assert mm["max_integer_diff"] == diff  # says by how much the outputs differ


def test_a_correct_graph_names_no_divergent_node_and_a_tampered_signed_quantizer_is_named(root):
    """ConvertQONNXtoFINN leaves a signed quantizer as thresholds that count (0..15) and a following
    Add of -8: its integers are the count plus that offset, which must match the QONNX model's
    -8..7. Streamlined and hardware graphs hold the offset in the thresholds' out_bias / ActVal;
    a corrupted signed layer must be the one named at every stage."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.exactness import first_divergent_node, stage_input

    m, stages = lowered("depth8", 2, root)
    x = eval_images()[:2]
    ref, p = qonnx_reference(stages, x)
    for stage in CHECKED_STAGES:
        g = stages[stage]
        for i in range(len(x)):
            ctx = execute_onnx(g, {g.graph.input[0].name: stage_input(g, p[i:i + 1], ref.input_scale)},
                               return_full_exec_context=True)
            assert first_divergent_node(g, ctx, ref.images[i].quantizers) is None, stage
    signed_ops = {"finn": "MultiThreshold", "streamlined": "MultiThreshold", "hw": "Thresholding"}
    for stage, op in signed_ops.items():
        g = ModelWrapper(stages[stage].model, make_deepcopy=True)  # the cached stage stays intact
        signed = [n for n in g.graph.node if n.op_type == op and (
            g.get_tensor_datatype(n.output[0]).signed() or g.find_consumer(n.output[0]).op_type == "Add")]
        assert signed, stage  # the residual quantizers (INT4)
        target = signed[len(signed) // 2]  # not the first: the name must be the tampered one
        thr = g.get_initializer(target.input[1])
        g.set_initializer(target.input[1], thr + 0.5 if stage == "finn" else thr + 1)
        r = check_exactness(ref, {stage: g}, p)[stage]
        assert not r.passed, stage
        assert r.mismatches[0]["first_divergent_node"] == f"{target.name} ({op})", stage


def test_node_that_cannot_be_lowered_is_named(tmp_path):
    """A float scale left after the thresholds: convert_to_hw refuses it, naming the node."""
    from qonnx.core.data_layout import NHWC
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.util.basic import qonnx_make_model

    from flows.finn_env import import_finn
    from flows.lowering import build_config, step_wrn_convert_to_hw

    import_finn(tmp_path / ".finn")
    g = helper.make_graph(
        [helper.make_node("MultiThreshold", ["x", "t"], ["q"], domain="qonnx.custom_op.general",
                          out_dtype="UINT2", data_layout="NHWC", name="MultiThreshold_0"),
         helper.make_node("Mul", ["q", "s"], ["y"], name="Mul_0")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 4, 2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 4, 2])])
    model = ModelWrapper(qonnx_make_model(g))
    model.set_initializer("t", np.array([[0.0, 1.0, 2.0]] * 2, dtype=np.float32))
    model.set_initializer("s", np.array(0.5, dtype=np.float32))
    model.set_tensor_datatype("x", DataType["INT8"])
    model.set_tensor_layout("x", NHWC)
    model = model.transform(InferDataTypes())
    with pytest.raises(LoweringError, match=r"Mul_0 \(Mul\)"):
        step_wrn_convert_to_hw(model, build_config(tmp_path / "out"))


@pytest.mark.parametrize("steps,out_dtype,out_bias", [(3, "UINT2", 0), (15, "INT4", -8), (255, "UINT8", 0),
                                                       (255, "INT8", -128)])
def test_mvau_thresholds_are_fused_up_to_15_and_standalone_beyond(tmp_path, steps, out_dtype, out_bias):
    """MatMul (+-1 weights) + MultiThreshold: up to 15 thresholds per channel the MVAU holds them;
    more (an 8-bit stream) go to a Thresholding layer after an MVAU that outputs its accumulator.
    Either way the lowered graph equals numpy's count of thresholds reached, element by element."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.data_layout import NHWC
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    from flows.finn_env import import_finn
    from flows.lowering import build_config, step_wrn_convert_to_hw

    import_finn(tmp_path / ".finn")
    rng = np.random.default_rng(steps)
    mw, mh, shape = 12, 6, [1, 3, 3]
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["acc"], name="MatMul_0"),
         helper.make_node("MultiThreshold", ["acc", "t"], ["y"], domain="qonnx.custom_op.general",
                          out_dtype=out_dtype, out_bias=float(out_bias), data_layout="NHWC", name="MultiThreshold_0")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape + [mw])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape + [mh])])
    model = ModelWrapper(qonnx_make_model(g))
    w = rng.choice([-1.0, 1.0], size=(mw, mh)).astype(np.float32)
    bound = mw * 127
    thr = np.sort(rng.integers(-bound - 20, bound + 20, size=(mh, steps)), axis=1).astype(np.float32)
    model.set_initializer("w", w)
    model.set_initializer("t", thr)
    model.set_tensor_datatype("x", DataType["INT8"])
    model.set_tensor_datatype("w", DataType["BIPOLAR"])
    model.set_tensor_layout("x", NHWC)
    model = model.transform(InferShapes()).transform(InferDataTypes())
    hw = step_wrn_convert_to_hw(model, build_config(tmp_path / "out"))

    ops = [n.op_type for n in hw.graph.node]
    mvau = getCustomOp(next(n for n in hw.graph.node if n.op_type == "MVAU"))
    if steps <= MAX_FUSED_THRESHOLDS:
        assert ops == ["MVAU"] and not mvau.get_nodeattr("noActivation")
    else:
        assert ops == ["MVAU", "Thresholding"] and mvau.get_nodeattr("noActivation")
        th = getCustomOp(hw.graph.node[1])
        assert th.get_nodeattr("numSteps") == steps and th.get_nodeattr("ActVal") == out_bias
        acc_dt = DataType[mvau.get_nodeattr("outputDataType")]  # the accumulator's range, no wider
        assert acc_dt.min() <= -bound and acc_dt.max() >= bound and acc_dt.bitwidth() == 12
    assert hw.get_tensor_datatype(hw.graph.output[0].name).name == out_dtype

    x = rng.integers(-128, 128, size=(8, *shape, mw))
    x[0] = -128  # the accumulator's extremes
    x[1] = np.where(w[:, 0] > 0, 127, -128)
    for xi in x:
        acc = xi.astype(np.int64) @ w.astype(np.int64)
        want = out_bias + (acc[..., None] >= thr.astype(np.int64)).sum(axis=-1)
        got = execute_onnx(hw, {hw.graph.input[0].name: xi.astype(np.float32)})[hw.graph.output[0].name]
        assert np.array_equal(got.astype(np.int64), want)


@pytest.mark.parametrize("in_dtype,mw", [("UINT8", 9), ("INT8", 12), ("INT4", 20)])
def test_mvau_without_activation_outputs_its_accumulator_range(tmp_path, in_dtype, mw):
    """The stem's shape: MatMul (+-1 weights) forked to two MultiThresholds (a 2-bit activation and
    255 steps of an 8-bit stream). The MVAU outputs its accumulator typed as its range, not INT32;
    the fork and both Thresholdings see that type, and the graph equals numpy element by element."""
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.data_layout import NHWC
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.infer_datatypes import InferDataTypes
    from qonnx.transformation.infer_shapes import InferShapes
    from qonnx.util.basic import qonnx_make_model

    from flows.finn_env import import_finn
    from flows.lowering import build_config, step_wrn_convert_to_hw

    import_finn(tmp_path / ".finn")
    rng = np.random.default_rng(mw)
    idt, mh, shape = DataType[in_dtype], 6, [1, 2, 2]
    g = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["acc"], name="MatMul_0"),
         helper.make_node("MultiThreshold", ["acc", "t2"], ["a"], domain="qonnx.custom_op.general",
                          out_dtype="UINT2", data_layout="NHWC", name="MultiThreshold_0"),
         helper.make_node("MultiThreshold", ["acc", "t8"], ["r"], domain="qonnx.custom_op.general",
                          out_dtype="INT8", out_bias=-128.0, data_layout="NHWC", name="MultiThreshold_1")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape + [mw])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, shape + [mh]) for n in ("a", "r")])
    model = ModelWrapper(qonnx_make_model(g))
    w = rng.choice([-1.0, 1.0], size=(mw, mh)).astype(np.float32)
    # the dot products' extremes over the columns of these weights: what the narrow type must hold
    ends = np.stack([w * idt.min(), w * idt.max()])
    lo, hi = int(ends.min(axis=0).sum(axis=0).min()), int(ends.max(axis=0).sum(axis=0).max())
    thr = {n: np.sort(rng.integers(lo - 20, hi + 20, size=(mh, k)), axis=1).astype(np.float32)
           for n, k in (("t2", 3), ("t8", 255))}
    model.set_initializer("w", w)
    for n, t in thr.items():
        model.set_initializer(n, t)
    model.set_tensor_datatype("x", idt)
    model.set_tensor_datatype("w", DataType["BIPOLAR"])
    model.set_tensor_layout("x", NHWC)
    model = model.transform(InferShapes()).transform(InferDataTypes())
    hw = step_wrn_convert_to_hw(model, build_config(tmp_path / "out"))

    assert [n.op_type for n in hw.graph.node] == ["MVAU", "DuplicateStreams", "Thresholding", "Thresholding"]
    acc_dt = DataType[getCustomOp(hw.graph.node[0]).get_nodeattr("outputDataType")]
    want_bits = next(b for b in range(2, 33) if -(2 ** (b - 1)) <= lo and hi < 2 ** (b - 1))
    assert lo < 0 and acc_dt.signed() and acc_dt.bitwidth() == want_bits
    assert {getCustomOp(n).get_nodeattr("inputDataType") for n in hw.graph.node[1:]} == {acc_dt.name}

    x = rng.integers(idt.min(), idt.max() + 1, size=(8, *shape, mw))
    x[0] = idt.min()  # the accumulator's extremes
    x[1] = np.where(w[:, 0] > 0, idt.max(), idt.min())
    for xi in x:
        acc = xi.astype(np.int64) @ w.astype(np.int64)
        got = execute_onnx(hw, {hw.graph.input[0].name: xi.astype(np.float32)})
        for out, t, bias in zip(hw.graph.output, (thr["t2"], thr["t8"]), (0, -128)):  # the outputs a, r
            want = bias + (acc[..., None] >= t.astype(np.int64)).sum(axis=-1)
            assert np.array_equal(got[out.name].astype(np.int64), want), out.name


@functools.lru_cache(maxsize=None)
def lowered_bethge(arch: str, root: str, weight_quant: str = "sign"):
    m = warmed_bethge(arch, size=SIZE, weight_quant=weight_quant)
    path = export_qonnx(m, (1, SIZE, SIZE), Path(root) / f"{arch}_{weight_quant}.onnx")
    return m, lower_wrn(path, f"{root}/{arch}_{weight_quant}")


def _input_types(df, op_type):
    from qonnx.custom_op.registry import getCustomOp

    return [getCustomOp(n).get_nodeattr("inputDataType") for n in df.graph.node if n.op_type == op_type]


@pytest.mark.slow  # the BinaryDenseNet test below keeps one other family in the default suite
@pytest.mark.parametrize("weight_quant", ["sign", "he_const"])
def test_resnete_w1a1_lowers_completely_and_exactly(root, weight_quant):
    """Every unit: a fork, the sign as a threshold (+-1 as INT2), the 3x3 conv's MVAU, an integer
    add; the downsampling shortcut (avgpool 2x2/2 + 1x1 conv) as one 2x2/2 sliding window + MVAU
    on the residual stream, whose add output type is narrowed to hold every sum (INT4 + INT4)."""
    from qonnx.custom_op.registry import getCustomOp

    m, stages = lowered_bethge("resnete", root, weight_quant)
    assert {n.op_type for n in stages["streamlined"].graph.node} <= set(STREAMLINED)
    df = stages["dataflow"]
    ops = [n.op_type for n in df.graph.node]
    assert set(ops) <= ALLOWED, set(ops) - ALLOWED
    n_units, n_down = len(m.body), sum(u.downsample for u in m.body)
    assert ops.count("ElementwiseAdd_hls") == ops.count("DuplicateStreams_hls") == n_units
    assert ops.count("MVAU_hls") == sum(isinstance(mod, torch.nn.Conv2d) for mod in m.modules())
    windows = [getCustomOp(n) for n in df.graph.node if n.op_type.startswith("ConvolutionInputGenerator")]
    assert sum(list(w.get_nodeattr("ConvKernelDim")) == [2, 2] and list(w.get_nodeattr("Stride")) == [2, 2]
               for w in windows) == n_down
    adds = [getCustomOp(n) for n in df.graph.node if n.op_type == "ElementwiseAdd_hls"]
    assert {a.get_nodeattr("out_dtype") for a in adds} == {"INT5"}
    mvau_inputs = _input_types(df, "MVAU_hls")
    assert mvau_inputs[0] == "UINT8"  # the raw pixels
    # +-1 activations (as their bits into an xnor-popcount MVAU where they feed only unpadded
    # convs, flows.transformation.binary); the residual stream
    assert {"INT2", "INT5"} <= set(mvau_inputs[1:]) <= {"BINARY", "INT2", "INT5"}
    assert_binary_inputs_are_xnor(df)
    assert mvau_inputs.count("INT5") == n_down
    results = exactness(m, stages, eval_images())
    assert all(r.passed and r.images == IMAGES for r in results.values()), summary(results)


def assert_binary_inputs_are_xnor(df):
    """An MVAU takes BINARY inputs only as FINN's xnor-popcount of signs, with 0/1 weights."""
    from qonnx.custom_op.registry import getCustomOp

    for n in df.graph.node:
        if n.op_type.startswith("MVAU") and getCustomOp(n).get_nodeattr("inputDataType") == "BINARY":
            assert getCustomOp(n).get_nodeattr("binaryXnorMode") == 1, n.name
            assert set(np.unique(df.get_initializer(n.input[1]))) <= {0.0, 1.0}, n.name


def test_full_precision_downsampling_conv_is_refused_by_name(root):
    m = warmed_bethge("resnete", size=SIZE, weight_quant="sign", fp_downsample=True)
    path = export_qonnx(m, (1, SIZE, SIZE), Path(root) / "resnete_fp.onnx")
    with pytest.raises(LoweringError, match=r"^Conv_\d+ \(Conv\): full-precision conv .*fp_downsample"):
        lower_wrn(path, f"{root}/resnete_fp")


def test_binarydensenet_w1a1_lowers_completely_and_exactly(root):
    """Every dense layer: a fork, BN + sign as a threshold (+-1 as INT2), the 3x3 conv's MVAU
    with the block's quantizer as its thresholds, a concatenation of the integer streams on the
    last (channel) axis; every transition: threshold, then 2x2/2 max pool (a sliding window and a
    Pool; the pool moved after the sign, with which it commutes), then the 1x1 conv's MVAU."""
    from qonnx.custom_op.registry import getCustomOp

    m, stages = lowered_bethge("densenet", root)
    assert {n.op_type for n in stages["streamlined"].graph.node} <= set(STREAMLINED) | {"Concat", "MaxPoolNHWC"}
    df = stages["dataflow"]
    ops = [n.op_type for n in df.graph.node]
    allowed = ALLOWED | {"StreamingConcat_hls", "Pool_hls"}
    assert set(ops) <= allowed, set(ops) - allowed
    n_layers, n_transitions = sum(m.cfg.dense_layers), len(m.cfg.dense_layers) - 1
    assert ops.count("StreamingConcat_hls") == ops.count("DuplicateStreams_hls") == n_layers
    assert ops.count("Pool_hls") == n_transitions
    assert ops.count("MVAU_hls") == sum(isinstance(mod, torch.nn.Conv2d) for mod in m.modules())
    pools = [getCustomOp(n) for n in df.graph.node if n.op_type == "Pool_hls"]
    assert all(p.get_nodeattr("Function") == "MaxPool" and p.get_nodeattr("InputDataType") in ("INT2", "BINARY")
               for p in pools)
    concats = [getCustomOp(n) for n in df.graph.node if n.op_type == "StreamingConcat_hls"]
    assert all(set(c.get_nodeattr("inputDataTypes")) == {"INT4"} for c in concats)  # one dense-stream type
    # every conv after the stem sees +-1: as INT2, or as bits into an xnor-popcount MVAU
    assert "INT2" in set(_input_types(df, "MVAU_hls")[1:]) <= {"INT2", "BINARY"}
    assert_binary_inputs_are_xnor(df)
    results = exactness(m, stages, eval_images())
    assert all(r.passed and r.images == IMAGES for r in results.values()), summary(results)
