"""ThresholdTable_rtl (hw/rtl/threshold_table.sv) against FINN's python Thresholding, bit-exact.

Each case: a one-node FINN Thresholding with random sorted thresholds (some beyond the input's
reach, some between integers), FINN's python execution as the reference, the node switched to
this project's table lookup and run in Verilator on >= 1000 input elements per lane with random
input gaps and output back-pressure; every output must be equal as an integer.
"""

from __future__ import annotations

import numpy as np
import pytest
from qonnx.core.datatype import DataType

from tests.hw.custom_op.stream_layer_util import (
    as_rtl,
    assert_equal_ints,
    finn,  # noqa: F401  (fixture)
    finn_reference,
    needs_verilator,
    one_node_model,
    random_values,
    simulate,
    steady_cycles_per_image,
)

pytestmark = needs_verilator


def threshold_model(ch, pe, idt, odt, act_val, steps, shared, vecs, seed=0):
    rng = np.random.default_rng(seed)
    rows = 1 if shared else ch
    lo, hi = int(idt.min()), int(idt.max())
    thr = np.sort(rng.integers(lo - 3, hi + 4, size=(rows, steps)), axis=1).astype(np.float32)
    thr[:, ::7] += 0.5  # between two integers: x >= t means x >= ceil(t)
    model = one_node_model("Thresholding", [("x", (*vecs, ch), idt), ("t", thr.shape, DataType["FLOAT32"])],
                           [("y", (*vecs, ch), odt)], NumChannels=ch, PE=pe, numSteps=steps,
                           inputDataType=idt.name, weightDataType="FLOAT32", outputDataType=odt.name,
                           ActVal=act_val, numInputVectors=list(vecs))
    model.set_initializer("t", thr)
    model.graph.input.remove(next(i for i in model.graph.input if i.name == "t"))
    return model


# (channels, PE, input, output, ActVal, thresholds, shared by all channels, pixels)
CASES = [
    (48, 3, "INT13", "INT8", -128, 255, True, (2, 4, 4)),    # the stem's 8-bit residual stream
    (48, 4, "INT11", "INT8", -128, 255, True, (2, 4, 4)),    # after a residual add
    (12, 2, "INT9", "INT8", -128, 255, False, (2, 7, 7)),    # per-channel thresholds, 6 folds
    (8, 8, "UINT8", "UINT8", 0, 255, False, (2, 16, 16)),    # unsigned in and out, one fold
    (6, 1, "INT7", "INT5", -16, 31, False, (2, 20, 20)),     # PE 1, 6 folds, 5-bit output
]


@pytest.mark.parametrize("ch,pe,idt,odt,act_val,steps,shared,vecs", CASES)
def test_table_matches_finn(finn, ch, pe, idt, odt, act_val, steps, shared, vecs):
    idt, odt = DataType[idt], DataType[odt]
    model = threshold_model(ch, pe, idt, odt, act_val, steps, shared, vecs)
    x = random_values(np.random.default_rng(1), idt, (*vecs, ch))
    (want,) = finn_reference(model, {"x": x})
    assert len(np.unique(want)) > steps // 4  # the thresholds spread over the inputs
    _, op = as_rtl(model, "ThresholdTable_rtl")
    assert op.unsupported_reason(model, op.onnx_node) is None
    (got,), _ = simulate(op, [x], gaps=True, seed=2)
    assert_equal_ints(got, want, f"{ch} ch PE {pe} {idt.name} -> {odt.name}")
    # without gaps and back-pressure: one beat per cycle
    (got,), res = simulate(op, [x], gaps=False)
    assert_equal_ints(got, want, "no gaps")
    beats = int(np.prod(vecs[1:])) * ch // pe
    assert steady_cycles_per_image(res, "out0_V", beats) == beats


def test_every_input_value_of_a_shared_table(finn):
    """All 2^9 inputs of an INT9 stream in one image: each table word is read once."""
    idt, odt = DataType["INT9"], DataType["INT8"]
    model = threshold_model(4, 4, idt, odt, -128, 255, True, (1, 16, 32))
    x = np.arange(idt.min(), idt.max() + 1, dtype=np.float32).reshape(1, 16, 32, 1).repeat(4, axis=-1)
    x[..., 1] = x[..., 1][:, ::-1]  # another order in another lane
    (want,) = finn_reference(model, {"x": x})
    _, op = as_rtl(model, "ThresholdTable_rtl")
    (got,), _ = simulate(op, [x], gaps=True, seed=3)
    assert_equal_ints(got, want, "all INT9 values")


def test_unsupported_reason(finn):
    cls = __import__("hw.custom_op.thresholdtable_rtl", fromlist=["ThresholdTable_rtl"]).ThresholdTable_rtl

    def reason(**kw):
        args = dict(ch=8, pe=2, idt=DataType["INT9"], odt=DataType["INT8"], act_val=-128, steps=255, shared=True,
                    vecs=(1, 2, 2))
        args.update(kw)
        m = threshold_model(**args)
        return cls.unsupported_reason(m, m.graph.node[0])

    assert reason() is None
    assert "comparators cost less" in reason(odt=DataType["UINT2"], act_val=0, steps=3)
    assert "over 2 BRAM36" in reason(idt=DataType["INT14"])  # 16K x 8 bits per lane: 4 BRAM36
    assert "over 2 BRAM36" in reason(ch=16, pe=1, idt=DataType["INT10"], shared=False)  # 16 folds x 1K
    assert "not a plain integer" in reason(odt=DataType["BIPOLAR"], act_val=0, steps=1)
