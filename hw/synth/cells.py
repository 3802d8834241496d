"""Xilinx primitives as yosys ``synth_xilinx`` leaves them, counted as the boards' resource kinds.

How cells are counted (xc7 names; UltraScale+ has the E2 / CARRY8 / RAM64M8 equivalents):

- ``LUT``: every LUT *site* used, as Vivado's "Slice LUTs" and the boards' LUT budgets count them:
  logic LUTs (``LUT1`` .. ``LUT6``, and ``INV``, which Vivado implements as a LUT1) **plus** the
  LUTs used as memory below. ``LUT_logic`` is the logic part alone.
- ``LUTRAM``: LUT sites used as memory: distributed RAM (``RAM32M``/``RAM64M`` take 4 sites,
  ``RAM32X1D``/``RAM64X1D`` 2, ``RAM128X1D``/``RAM256X1S`` 4, ...) and shift registers
  (``SRL16E``/``SRLC32E``, 1 site each); ``SRL`` is the number of shift-register cells among them.
- ``FF``: ``FDRE``/``FDSE``/``FDCE``/``FDPE`` (and latches ``LDCE``/``LDPE``, which Vivado also
  reports as slice registers).
- ``BRAM36``: ``RAMB36E1`` counts 1, ``RAMB18E1`` 0.5 (two of them share one RAMB36 tile).
- ``DSP``: ``DSP48E1``/``DSP48E2``. ``URAM``: ``URAM288``. ``CARRY``: ``CARRY4`` (xc7) or
  ``CARRY8`` (UltraScale+) cells. ``MUXF7``/``MUXF8``: the slice's wide-function muxes, which use no
  LUT and are reported separately.
- Any other cell (I/O buffers are disabled and assertions ignored, so normally none) lands in
  ``other``, so that nothing is silently dropped.

Also which ``synth_xilinx -family`` a board's part belongs to (``family_for_part``).
"""

from __future__ import annotations

import re

from common.errors import UserError

FAMILIES = ("xc7", "xcup", "xcu")

LOGIC_LUTS = {"LUT1", "LUT2", "LUT3", "LUT4", "LUT5", "LUT6", "INV"}
FLIP_FLOPS = {"FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE"}
SHIFT_REGISTERS = {"SRL16E": 1, "SRLC16E": 1, "SRLC32E": 1}
# Distributed RAM primitives and the number of LUT sites each occupies.
DISTRIBUTED_RAMS = {
    "RAM32X1S": 1, "RAM32X1D": 2, "RAM32M": 4, "RAM32M16": 8,
    "RAM64X1S": 1, "RAM64X1D": 2, "RAM64M": 4, "RAM64M8": 8,
    "RAM128X1S": 2, "RAM128X1D": 4, "RAM256X1S": 4, "RAM256X1D": 8, "RAM512X1S": 8,
}
BLOCK_RAMS = {"RAMB36E1": 1.0, "RAMB18E1": 0.5, "RAMB36E2": 1.0, "RAMB18E2": 0.5,
              "FIFO36E1": 1.0, "FIFO18E1": 0.5, "FIFO36E2": 1.0, "FIFO18E2": 0.5}
DSPS = {"DSP48E1", "DSP48E2"}
CARRIES = {"CARRY4", "CARRY8"}
WIDE_MUXES = {"MUXF7", "MUXF8", "MUXF9"}
URAMS = {"URAM288"}
FREE_CELLS = {"GND", "VCC"}  # constants: no fabric used


def count_cells(cells: dict[str, int]) -> dict:
    """Map yosys cell counts (``num_cells_by_type`` after synth_xilinx) onto resource kinds."""
    n = lambda names: sum(cells.get(c, 0) for c in names)  # noqa: E731
    srl = n(SHIFT_REGISTERS)
    lutram = srl + sum(sites * cells.get(c, 0) for c, sites in DISTRIBUTED_RAMS.items())
    logic = n(LOGIC_LUTS)
    known = (LOGIC_LUTS | FLIP_FLOPS | set(SHIFT_REGISTERS) | set(DISTRIBUTED_RAMS) | set(BLOCK_RAMS)
             | DSPS | CARRIES | WIDE_MUXES | URAMS | FREE_CELLS)
    return {
        "LUT": logic + lutram, "LUT_logic": logic, "LUTRAM": lutram, "SRL": srl, "FF": n(FLIP_FLOPS),
        "BRAM36": sum(w * cells.get(c, 0) for c, w in BLOCK_RAMS.items()), "DSP": n(DSPS), "URAM": n(URAMS),
        "CARRY": n(CARRIES), "MUXF7": cells.get("MUXF7", 0), "MUXF8": cells.get("MUXF8", 0),
        "other": {c: k for c, k in sorted(cells.items()) if c not in known},
    }


def family_for_part(part: str) -> str:
    """synth_xilinx's -family for a Xilinx part name (e.g. xc7z020clg400-1 -> xc7)."""
    p = part.lower()
    if p.startswith("xc7"):
        return "xc7"
    # Zynq UltraScale+ (xczu*), Kria (xck26), Alveo U-series (xcu50/55c/200/250/280) and the
    # Virtex/Kintex UltraScale+ parts (a 'p' after the size: xcvu9p, xcku5p).
    if re.match(r"xc(zu|k26|u\d|vu\d+p|ku\d+p)", p):
        return "xcup"
    if re.match(r"xc(vu|ku)\d", p):
        return "xcu"
    raise UserError(f"no yosys synth_xilinx family known for part '{part}'")
