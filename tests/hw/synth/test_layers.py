"""hw.synth.layers: layers synthesized in parallel, summed, and a too small budget flagged."""

from __future__ import annotations

import json

import pytest

from common.boards import DesignTooLarge, load_board
from common.errors import UserError
from hw.synth.layers import synthesize_layers
from hw.synth.report import SynthReport, budget_of
from tests.hw.synth.designs import REGISTER, SHIFT, needs_yosys, write


@needs_yosys
def test_layers_sum_and_a_too_small_budget_is_flagged(tmp_path):
    layers = [("small", "reg_n", [write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "5"))]),
              ("shift", "shift32", [write(tmp_path / "shift32.v", SHIFT)])]
    budget = {"LUT": 1000, "FF": 4, "BRAM36": 1, "DSP": 0}  # fewer FFs than the 5-bit register alone
    report = synthesize_layers(layers, budget, jobs=2, workdir=tmp_path / "w", out=tmp_path / "r.json")
    assert [name for name, _ in report.layers] == ["small", "shift"]
    assert report.totals["FF"] == 5 + report.layers[1][1].FF
    assert report.totals["LUT"] == report.layers[1][1].LUT
    assert "FF" in report.over and not report.fits
    with pytest.raises(DesignTooLarge, match="does NOT fit: FF"):
        report.check()
    assert json.loads((tmp_path / "r.json").read_text())["verdict"].startswith("does NOT fit")
    assert (tmp_path / "r.md").is_file()
    roomy = SynthReport(report.family, report.layers, budget_of(load_board("pynq-z2").resources, 0.15))
    assert roomy.fits and roomy.verdict() == "fits the budget"
    roomy.check()


@needs_yosys
def test_a_layer_the_same_as_another_takes_its_result_without_a_run(tmp_path):
    reg = write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "5"))
    layers = [("a", "reg_n", [reg]), ("b", "reg_n", [reg]), ("shift", "shift32", [write(tmp_path / "s.v", SHIFT)])]
    runs = []
    report = synthesize_layers(layers, {"LUT": 1000, "FF": 1000, "BRAM36": 1, "DSP": 0}, jobs=2,
                               workdir=tmp_path / "w", same_as={"b": "a"}, progress=lambda d, t, n: runs.append(n))
    assert sorted(runs) == ["a", "shift"] and not (tmp_path / "w" / "b").exists()
    assert [name for name, _ in report.layers] == ["a", "b", "shift"]
    assert report.layers[1][1] is report.layers[0][1]
    assert report.totals["FF"] == 2 * 5 + report.layers[2][1].FF
    with pytest.raises(UserError, match="same_as must map layers to layers that are run: b"):
        synthesize_layers(layers, {"LUT": 1}, same_as={"b": "nope"})
