"""The whole HLS accelerator layer by layer (flows/verify_cppsim.py, hw/cppsim/layerwise.py): FINN's HLS layers in cppsim,
the RTL-only layers in Verilator, each fed by the simulated layers before it; labels, class-score
integers and every layer's output against FINN's python execution and Brevitas.

Two networks of shapes the trainer's default does not make, built with random weights: a
WRN-8-1 at 12x12 (residual forks and joins, 1x1 shortcuts, GlobalAccPool, LabelSelect) and a
BinaryDenseNet (concatenations, MaxPool transitions as a depthwise sliding window + Pool_hls).
Both are `slow` (every HLS layer is a g++ compile); `make verify HW=cppsim` runs them. The
window-order helper and the one-line refusal run in the default suite.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.hw.conftest import cppsim, finn_deps_at  # noqa: F401  (fixtures)
from tests.hw.custom_op.stream_layer_util import finn  # noqa: F401
from tests.hw.test_cppsim import stream_order


def hls_build(brevitas, root, name):

    from common.boards import load_board
    from flows.build import build, build_dir_for, codegen_model
    from tests.flows.test_lowering import SIZE
    from train.export import export_qonnx

    path = export_qonnx(brevitas, (1, SIZE, SIZE), root / f"{name}.onnx")
    build(path, "pynq-z2", root / "out", vendor_free=True, hw_backend="hls")
    return codegen_model(build_dir_for(path, load_board("pynq-z2"), root / "out")), path


def check_layerwise(brevitas, built, work, images=3):
    from flows.exactness import stage_input
    from flows.verify_rtl import compare_references
    from hw.cppsim.layerwise import LayerwiseSim, run_and_compare
    from tests.fixtures import verification_for
    from tests.flows.test_lowering import SIZE

    model, path = built
    x = np.random.default_rng(0).integers(0, 256, (images, 1, SIZE, SIZE), dtype=np.uint8)
    v = verification_for(path, x, brevitas)
    result = run_and_compare(LayerwiseSim(model, work), stage_input(model, v.p, 1.0), progress=False)
    compare_references(result, v)
    assert [r["layer"] for r in result["layers"] if not r["equal"]] == []
    assert result["labels_equal_python"] == result["labels_equal_qonnx"] == result["labels_equal_brevitas"] == images
    assert result["scores_equal_python"] == result["scores_equal_qonnx"] == result["scores_equal_brevitas"] == images
    assert result["passed"]
    return result


@pytest.mark.slow
@pytest.mark.cppsim
def test_residual_network_hls_accelerator(cppsim, tmp_path):
    from tests.flows.test_lowering import small_wrn

    torch.set_num_threads(1)
    brevitas = small_wrn("depth8", 2)
    built = hls_build(brevitas, tmp_path, "wrn8_1")
    ops = {n.op_type for n in built[0].graph.node}
    assert {"MVAU_hls", "DuplicateStreams_hls", "ElementwiseAdd_hls", "GlobalAccPool_hls", "LabelSelect_hls"} <= ops
    result = check_layerwise(brevitas, built, tmp_path / "sim")
    assert result["hls_layers"] >= 10 and result["rtl_layers"] >= 1


@pytest.mark.slow
@pytest.mark.cppsim
def test_binarydensenet_hls_accelerator(cppsim, tmp_path):
    from tests.fixtures import warmed_bethge
    from tests.flows.test_lowering import SIZE

    torch.set_num_threads(1)
    brevitas = warmed_bethge("densenet", size=SIZE)
    built = hls_build(brevitas, tmp_path, "densenet")
    ops = [n.op_type for n in built[0].graph.node]
    assert "StreamingConcat_hls" in ops and "Pool_hls" in ops
    check_layerwise(brevitas, built, tmp_path / "sim")


def test_window_stream_order_matches_the_depthwise_layout(finn):
    """window_stream_order puts FINN's [kernel][channel] tensor in the [fold][kernel][PE] order
    of a depthwise window, and leaves a standard window alone; checked on labelled elements."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    from hw.cppsim.layerwise import window_stream_order
    from tests.hw.custom_op.stream_layer_util import one_node_model

    k2, ch, pe = 4, 6, 2
    dt = DataType["UINT8"]
    x = np.arange(k2 * ch, dtype=np.float32).reshape(1, 1, 1, k2 * ch)  # element = kernel * ch + channel
    for depthwise in (1, 0):
        model = one_node_model("ConvolutionInputGenerator", [("x", (1, 2, 2, ch), dt)], [("w", (1, 1, 1, k2 * ch), dt)],
                               ConvKernelDim=[2, 2], IFMChannels=ch, IFMDim=[2, 2], OFMDim=[1, 1], SIMD=pe,
                               Stride=[2, 2], Dilation=[1, 1], inputDataType="UINT8", outputDataType="UINT8",
                               depthwise=depthwise)
        got = window_stream_order(getCustomOp(model.graph.node[0]), x).reshape(-1)
        if depthwise:
            want = [k * ch + f * pe + p for f in range(ch // pe) for k in range(k2) for p in range(pe)]
            assert got.tolist() == want
            assert np.array_equal(got, stream_order(x, k2, ch, pe).reshape(-1))
        else:
            assert np.array_equal(got, x.reshape(-1))


def test_without_finn_hlslib_verify_is_one_line(finn_deps_at, tmp_path):
    from flows.verify_cppsim import verify_hls_accelerator
    from hw.cppsim import CppSimUnavailable

    finn_deps_at(tmp_path / "no-deps")
    with pytest.raises(CppSimUnavailable) as e:
        verify_hls_accelerator(tmp_path / "absent.onnx", out=tmp_path / "out", images=2)
    assert "\n" not in str(e.value) and "finn-hlslib" in str(e.value)
