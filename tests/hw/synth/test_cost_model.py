"""hw.synth.cost_model: the shape read off an MVAU node, the accumulator width, the fitted data."""

from __future__ import annotations

import pytest

from hw.synth.cost_model import FEATURES, MvauShape, coefficients, features, predict_luts, rom_luts_per_bit


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
    assert "StreamingDataWidthConverter" in scales
    dwc = scales["StreamingDataWidthConverter"]
    rtl, generic = (scaled_finn_luts(op, 100) for op in ("StreamingDataWidthConverter_rtl",
                                                         "StreamingDataWidthConverter"))
    assert rtl == generic
    assert scaled_finn_luts("StreamingDataWidthConverter_rtl", 100) == pytest.approx(100 * dwc)
    assert scaled_finn_luts("SomeOp_hls", 100) == 100  # no data: FINN's figure as it is
