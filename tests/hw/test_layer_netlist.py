"""hw.layer_netlist: every layer of a graph as RTL and as netlist on the tensors FINN's python
execution gives it; a layer whose netlist differs is named with its first differing output."""

from __future__ import annotations

import numpy as np

from tests.hw.custom_op.stream_layer_util import finn  # noqa: F401  (fixture)
from tests.hw.synth.designs import needs_verilator, needs_yosys, threshold_chain

pytestmark = [needs_yosys, needs_verilator]


def test_every_layer_of_a_chain_as_rtl_and_netlist(finn):
    from hw.layer_netlist import netlist_markdown, verify_layers_netlist
    from hw.sim.verilator import REPO

    from qonnx.transformation.infer_shapes import InferShapes

    model, _ = threshold_chain(np.random.default_rng(0), 2, ch=4, pe=2, n=3, idt="INT6", vecs=(1, 3, 3))
    model = model.transform(InferShapes())
    x = np.random.default_rng(1).integers(-32, 32, size=(2, 3, 3, 4)).astype(np.float32)
    seen = []
    r = verify_layers_netlist(model, x, REPO / "build" / "netlist-tests" / "chain", gap_prob=0.3, stall_prob=0.3,
                              progress=lambda k, n, row: seen.append((k, n, row["layer"])))
    assert r["passed"] and r["images"] == 2, r
    assert [row["layer"] for row in r["layers"]] == ["Thresholding_rtl_0", "Thresholding_rtl_1"]
    assert seen == [(1, 2, "Thresholding_rtl_0"), (2, 2, "Thresholding_rtl_1")]
    for row in r["layers"]:
        assert row["same_cycles"] and row["rtl_cycles"] == row["netlist_cycles"] > 0
        assert row["rtl_sim_s"] > 0 and row["netlist_sim_s"] > 0
    text = "\n".join(netlist_markdown(r))
    assert "**PASSED**" in text and "| Thresholding_rtl_1 | Thresholding_rtl | == | == | == | yes |" in text


def test_verify_netlist_refuses_cppsim_and_the_whole_test_set(capsys, tmp_path):
    from flows.cli import main_verify_hw

    assert main_verify_hw(["--netlist", "--sim", "cppsim", "--out", str(tmp_path)]) == 2
    assert "--netlist simulates the RTL layers' netlists" in capsys.readouterr().err
    assert main_verify_hw(["--netlist", "--images", "all", "--out", str(tmp_path)]) == 2
    assert "give --images 1..N" in capsys.readouterr().err
