"""The sources of one yosys run, copied flat into its work folder, HDL rewritten where yosys-slang needs it.

yosys runs in the work folder with relative paths: YoWASP cannot see absolute ``/tmp`` paths, and
FINN's generated RTL reads its memory files relative to the working directory (e.g.
``"./<node>_threshs_0_0.dat"``). Files ending in ``.v``/``.sv`` are read as sources; any other file
(headers, ``.dat`` ROM images) is copied only. Two constructs of finn-rtllib that Vivado and
Verilator accept but yosys-slang 0.70 refuses, and one attribute whose value yosys reads otherwise
than Vivado, are rewritten in the copies yosys reads, never in the simulated originals
(``SOURCE_FIXES``; each result lists the fixes it needed).
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from hw.synth.errors import SynthError

HDL_SUFFIXES = (".v", ".sv")


@dataclass(frozen=True)
class SourceFix:
    """A rewrite of the copy of a source that yosys reads (never of the original, which Verilator
    simulates): for constructs that Vivado and Verilator accept but yosys-slang refuses. Each fix
    must leave the hardware unchanged; tests/hw/synth/test_staging.py simulates the rewritten
    thresholding against an independent count of thresholds to check that."""
    name: str
    files: tuple[str, ...]  # file names it applies to; () = every HDL file
    pattern: str            # regular expression (re.M)
    replacement: str
    why: str

    def apply(self, name: str, text: str) -> tuple[str, int]:
        if self.files and name not in self.files:
            return text, 0
        return re.subn(self.pattern, self.replacement, text, flags=re.M)


SOURCE_FIXES = (
    # finn-rtllib thresholding.sv: `Scope <= (SCOPE_REDUCE == 0)? 1 : p.ptr[M-1:SN+1] < ...`. In
    # stage 0, SN+1 = M, so the dead branch holds the reversed select p.ptr[M-1:M]; SCOPE_REDUCE
    # is 0 in stage 0 for every N, so the branch is never taken, but yosys-slang 0.70 lowers it
    # anyway and stops with a bare "ERROR: unsynthesizable feature" (no location). Bits
    # [M-1:SN+1] as a number are p.ptr[M-1:0] >> (SN+1): the same value, and a legal select in
    # every stage.
    SourceFix("thresholding-scope-select", ("thresholding.sv",),
              r"p\.ptr\[M-1:SN\+1\] < 2\*\*stage - SCOPE_REDUCE",
              "(p.ptr[M-1:0] >> (SN+1)) < 2**stage - SCOPE_REDUCE",
              "reversed part-select in a dead branch (thresholding.sv, stage 0)"),
    # finn-rtllib dwc/hdl/vpc.sv sets `default_nettype inside its module, which the LRM forbids
    # and slang refuses ("directive is not allowed inside a design element"). `default_nettype
    # none only turns implicit nets into errors and wire is the default: dropping either cannot
    # change a design that Verilator already builds.
    SourceFix("default-nettype", (), r"^([ \t]*)`default_nettype[ \t]+(none|wire)\b",
              r"\1// `default_nettype \2 (dropped by hw.synth for slang)",
              "`default_nettype inside a module"),
    # rom_style = "distributed": Vivado builds the ROM from LUTs; yosys reads "distributed" as
    # distributed *RAM*, which on xc7 has no read-only mode, and stops with "no valid mapping
    # found for memory". yosys' name for a ROM in LUTs is "logic". Only the attribute changes.
    SourceFix("distributed-rom", (), r'\(\* rom_style = "distributed" \*\)', '(* rom_style = "logic" *)',
              'rom_style "distributed" (Vivado: LUT ROM) is "logic" for yosys'),
)


def stage_sources(sources: list[Path], workdir: Path) -> tuple[list[str], list[str]]:
    """Copy the sources flat into workdir, HDL files through SOURCE_FIXES; returns the names of the
    files to read as HDL and the fixes applied (as "<fix name> in <file>")."""
    seen: dict[str, Path] = {}
    read, fixed = [], []
    for src in map(Path, sources):
        if not src.is_file():
            raise SynthError(f"source not found: {src}")
        if src.name in seen and seen[src.name].resolve() != src.resolve():
            raise SynthError(f"two sources named {src.name}: {seen[src.name]} and {src}")
        if any(c.isspace() for c in src.name):
            raise SynthError(f"source name with white space (not supported in a yosys script): {src}")
        seen[src.name] = src
        dst = workdir / src.name
        if src.suffix in HDL_SUFFIXES:
            text = src.read_text(errors="replace")
            for fix in SOURCE_FIXES:
                text, n = fix.apply(src.name, text)
                if n:
                    fixed.append(f"{fix.name} in {src.name}")
            if not (dst.is_file() and dst.read_text(errors="replace") == text):
                dst.write_text(text)
            if src.name not in read:
                read.append(src.name)
        elif not (dst.exists() and dst.resolve() == src.resolve()):
            shutil.copyfile(src, dst)
    if not read:
        raise SynthError(f"no .v/.sv file among the sources: {', '.join(str(s) for s in sources)}")
    return read, fixed
