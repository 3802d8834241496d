"""The max pool's cost model (hw/synth/cost_model.pool_features, max_pool_cost.yaml) against
yosys, on pools outside the grid it was fitted to (bench/fit_pool_cost.py)."""

from __future__ import annotations

import math

import pytest

from hw.synth.cost_model import POOL_FEATURES, pool_coefficients, pool_features, predict_pool_luts
from tests.hw.synth.designs import needs_yosys


def test_pool_features_and_fitted_coefficients():
    assert pool_features(8, 2) == {"const": 1.0, "bits": 16.0, "wide_bits": 0.0}
    assert pool_features(4, 6) == {"const": 1.0, "bits": 24.0, "wide_bits": 24.0}
    c = pool_coefficients()
    assert set(c) == set(POOL_FEATURES) and all(v >= 0 for v in c.values())
    assert 0 < predict_pool_luts(1, 1) < predict_pool_luts(8, 2) < predict_pool_luts(8, 4)


@needs_yosys
@pytest.mark.parametrize("pe,dtype,kernel", [(4, "INT6", 2), (64, "UINT2", 3), (16, "INT3", 3)])
def test_max_pool_model_is_near_yosys(tmp_path, pe, dtype, kernel):
    """PE / widths / windows the fit did not see: the model within 25% of yosys' LUTs, and the
    flip-flops exactly the two registers of a beat (running maximum, output), the window counter
    and the output's valid bit."""
    from flows.finn_env import import_finn

    import_finn(tmp_path / "finn")
    import hw.custom_op  # noqa: F401  (registers MaxPool_rtl)
    from qonnx.core.datatype import DataType

    from hw.custom_op.maxpool_rtl import pool_model
    from hw.sim.node import ensure_hdl
    from hw.synth.accelerator import layer_sources
    from hw.synth.runner import synthesize

    model = pool_model(dtype, 4 * pe, pe, kernel)
    op = ensure_hdl(model, model.graph.node[0], code_dir=str(tmp_path / "hdl"))
    r = synthesize(*layer_sources(op), workdir=tmp_path / "synth")
    bits = DataType[dtype].bitwidth()
    assert r.FF == 2 * pe * bits + math.ceil(math.log2(kernel * kernel)) + 1
    assert r.BRAM36 == 0 and r.DSP == 0
    model_luts = predict_pool_luts(pe, bits)
    assert abs(model_luts - r.LUT) <= 0.25 * r.LUT, (model_luts, r.LUT)
    assert op.lut_estimation() == round(model_luts)
