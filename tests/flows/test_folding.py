"""Resource estimates behind the folding search (flows/folding.py), on single hand-built layers."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

CHANNELS, STEPS = 192, 255


@pytest.fixture(scope="module", autouse=True)
def finn(tmp_path_factory):
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn"))


def thresholding_rtl(channels: int, pe: int, threshold_rows: int):
    """A Thresholding_rtl of an 8-bit output (255 thresholds per set) on INT13 inputs."""
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node("Thresholding_rtl", ["x", "t"], ["y"], domain="finn.custom_op.fpgadataflow.rtl",
                            backend="fpgadataflow", NumChannels=channels, PE=pe, numSteps=STEPS,
                            inputDataType="INT13", weightDataType="INT14", outputDataType="INT8", ActVal=-128,
                            numInputVectors=[1, 6, 6], name="Thresholding_rtl_0")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 6, 6, channels])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 6, 6, channels])])
    model = ModelWrapper(qonnx_make_model(g))
    thr = np.sort(np.random.default_rng(0).integers(-4000, 4000, (threshold_rows, STEPS)), axis=1)
    model.set_initializer("t", thr.astype(np.float32))
    model.set_tensor_datatype("t", DataType["INT14"])
    return model, getCustomOp(model.graph.node[0])


@pytest.mark.parametrize("pe", [1, 4])
def test_shared_thresholds_are_estimated_as_one_set_per_pe(pe):
    """finn's Thresholding_rtl builds thresholds of shape (1, steps) with C = PE channels (its
    generated wrapper's parameter C): the estimate is that of a layer with PE channels, not
    FINN's, which stores a set for every channel."""
    from flows.folding import layer_estimates

    shared, op = thresholding_rtl(CHANNELS, pe, 1)
    finn_lut = op.node_res_estimation("xc7z020clg400-1")["LUT"]
    (est,) = layer_estimates(shared, "xc7z020clg400-1")
    (as_built,) = layer_estimates(thresholding_rtl(pe, pe, pe)[0], "xc7z020clg400-1")
    assert (est.LUT, est.BRAM36) == (as_built.LUT, as_built.BRAM36)
    assert est.LUT * 10 < finn_lut  # FINN's count holds 192 / PE times as many thresholds
    assert op.get_nodeattr("NumChannels") == CHANNELS  # the node is left as it was
    assert est.cycles == op.get_exp_cycles()  # cycles still for all 192 channels


def test_per_channel_thresholds_keep_finns_estimate():
    from flows.folding import layer_estimates

    model, op = thresholding_rtl(CHANNELS, 4, CHANNELS)
    (est,) = layer_estimates(model, "xc7z020clg400-1")
    res = op.node_res_estimation("xc7z020clg400-1")
    assert (est.LUT, est.BRAM36) == (res.get("LUT", 0), res.get("BRAM_18K", 0) / 2)
