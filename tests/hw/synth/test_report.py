"""hw.synth.report: a report assembled from fixed counts: totals, budget, verdict and its files."""

from __future__ import annotations

import json

import pytest

from common.boards import DesignTooLarge
from hw.synth.cells import count_cells
from hw.synth.report import SynthReport, budget_of
from hw.synth.runner import SynthResult


def test_budget_verdict_and_report_files(tmp_path):
    # A report assembled from fixed counts: the arithmetic and the verdict, without running yosys.
    def result(top, **kw):
        base = dict(count_cells({}), cells={}, seconds=0.0, log=tmp_path / "x.log", reader="slang")
        base.update(kw)
        return SynthResult(top=top, family="xc7", **base)
    layers = [("a", result("a", LUT=600, FF=10, BRAM36=1.5)), ("b", result("b", LUT=500, FF=5, DSP=2))]
    report = SynthReport("xc7", layers, budget_of({"LUT": 1000, "FF": 100, "BRAM36": 4, "DSP": 2}), board="tiny")
    assert report.totals["LUT"] == 1100 and report.totals["BRAM36"] == 1.5
    assert report.over == ["LUT"] and not report.fits
    assert report.used_pct["LUT"] == pytest.approx(110.0) and report.used_pct["DSP"] == pytest.approx(100.0)
    with pytest.raises(DesignTooLarge, match=r"yosys estimate on tiny does NOT fit: LUT 1100 > 1000 \(110%\)"):
        report.check()
    report.write(tmp_path / "synth.json")
    d = json.loads((tmp_path / "synth.json").read_text())
    assert d["fits"] is False and d["over"] == ["LUT"] and [row["name"] for row in d["layers"]] == ["a", "b"]
    md = (tmp_path / "synth.md").read_text()
    assert "does NOT fit" in md and "| **total** |" in md and "110.0%" in md
    assert not list(tmp_path.glob(".synth*.tmp"))  # atomic writes leave no temp files
    margin = SynthReport("xc7", layers, budget_of({"LUT": 2000, "FF": 100, "BRAM36": 4, "DSP": 2}, margin=0.5))
    # the margin applies to every kind: 2 DSPs used of 2 x (1 - 0.5)
    assert margin.budget["LUT"] == 1000 and margin.budget["DSP"] == 1 and margin.over == ["LUT", "DSP"]
