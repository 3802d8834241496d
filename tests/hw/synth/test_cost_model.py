"""hw.synth.cost_model: the shape read off an MVAU node, the accumulator width, the fitted data."""

from __future__ import annotations

import pytest

from hw.synth.cost_model import FEATURES, MvauShape, coefficients, features, predict_luts, rom_luts_per_bit
from tests.hw.synth.designs import needs_yosys


@pytest.mark.parametrize("mw,bits,signed", [(9, 8, False), (432, 2, False), (1728, 2, False), (96, 4, True)])
def test_accumulator_holds_every_dot_product_and_no_more(mw, bits, signed):
    s = MvauShape(mw=mw, mh=8, pe=1, simd=1, in_bits=bits, in_signed=signed, out_bits=8, no_act=True)
    largest = mw * (2 ** (bits - 1) if signed else 2 ** bits - 1)  # |sum of +-x| over MW inputs
    assert -(2 ** (s.acc_bits - 1)) <= -largest and largest <= 2 ** (s.acc_bits - 1) - 1
    assert largest > 2 ** (s.acc_bits - 2) - 1  # one bit fewer would not hold it


def test_rom_in_luts_costs_one_lut6_per_64_words_and_their_muxes():
    assert [rom_luts_per_bit(d) for d in (1, 64, 65, 128, 576)] == [1, 1, 3, 3, 17]


def test_block_ram_weights_cost_no_rom_luts_and_lut_weights_grow_with_depth():
    shallow = MvauShape(mw=432, mh=48, pe=16, simd=36, in_bits=2, in_signed=False, out_bits=2, no_act=False, nsteps=3)
    deep = MvauShape(mw=1728, mh=192, pe=16, simd=36, in_bits=2, in_signed=False, out_bits=14, no_act=True)
    assert features(shallow, "block")["rom"] == 0
    assert features(deep, "distributed")["rom"] == deep.width * rom_luts_per_bit(deep.depth)
    for s in (shallow, deep):
        assert predict_luts(s, "distributed") >= predict_luts(s, "block") > 0


def test_fitted_coefficients_are_complete_and_non_negative():
    c = coefficients()
    assert set(c) == set(FEATURES) and all(v >= 0 for v in c.values())


def test_finn_estimates_of_other_layers_are_scaled_per_op_type_whatever_its_backend():
    from hw.synth.cost_model import finn_lut_scales, scaled_finn_luts

    scales = finn_lut_scales()
    assert "Thresholding" in scales and "StreamingDataWidthConverter" not in scales  # modelled instead
    thr = scales["Thresholding"]
    rtl, generic = (scaled_finn_luts(op, 100) for op in ("Thresholding_rtl", "Thresholding"))
    assert rtl == generic == pytest.approx(100 * thr)
    assert scaled_finn_luts("SomeOp_hls", 100) == 100  # no data: FINN's figure as it is


def test_width_converter_features_narrowing_by_mux_levels_widening_by_buffer():
    from hw.synth.cost_model import DWC_FEATURES, dwc_coefficients, dwc_features

    assert dwc_features(288, 12) == {"const": 1.0, "down": pytest.approx(288 * 4.585, rel=1e-3), "up": 0.0}
    assert dwc_features(8, 72) == {"const": 1.0, "down": 0.0, "up": 72.0}
    assert dwc_features(48, 72)["up"] == 144  # not a multiple: the common multiple is buffered
    c = dwc_coefficients()
    assert set(c) == set(DWC_FEATURES) and all(v >= 0 for v in c.values())


@needs_yosys
@pytest.mark.parametrize("elems_in,elems_out,bits", [(8, 1, 12), (1, 9, 8)])
def test_width_converter_model_is_near_yosys_where_finns_estimate_is_not(tmp_path, elems_in, elems_out, bits):
    """FINN's own width converter (finn-rtllib), synthesized: the model within 35% of yosys; FINN's
    estimate of a narrowing one is a small fraction of it (why the folding does not use it)."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.util.basic import qonnx_make_model

    from flows.finn_env import import_finn
    from hw.sim.node import ensure_hdl
    from hw.synth.accelerator import layer_sources
    from hw.synth.cost_model import predict_dwc_luts
    from hw.synth.runner import synthesize

    import_finn(tmp_path / "finn")
    dt = DataType[f"INT{bits}"]
    shape = [1, 4, 4, 72]
    node = helper.make_node(
        "StreamingDataWidthConverter_rtl", ["x"], ["y"], domain="finn.custom_op.fpgadataflow.rtl", name="DWC_0",
        backend="fpgadataflow", inShape=shape, outShape=shape, inWidth=elems_in * bits, outWidth=elems_out * bits,
        dataType=dt.name)
    graph = helper.make_graph([node], "dwc", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)])
    model = ModelWrapper(qonnx_make_model(graph))
    model.set_tensor_datatype("x", dt)
    model.set_tensor_datatype("y", dt)
    op = ensure_hdl(model, model.graph.node[0], code_dir=str(tmp_path / "hdl"))
    top, files = layer_sources(op)
    luts = synthesize(top, files, workdir=tmp_path / "synth").LUT
    model_luts = predict_dwc_luts(elems_in * bits, elems_out * bits)
    assert abs(model_luts - luts) <= 0.35 * luts, (model_luts, luts)
    if elems_in > elems_out:
        assert getCustomOp(model.graph.node[0]).lut_estimation("xc7z020clg400-1") < 0.25 * luts
