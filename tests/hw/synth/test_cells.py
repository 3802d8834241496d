"""hw.synth.cells: cell counts mapped onto resource kinds, and the family of each board's part; no yosys."""

from __future__ import annotations

import pytest

from common.boards import load_board
from common.errors import UserError
from hw.synth.cells import count_cells, family_for_part


def test_cell_mapping_counts_lut_sites_and_half_brams():
    # Xilinx UG474: RAM64M and RAM32M take 4 LUTs, RAM64X1D 2, an SRL one; a RAMB18 is half a RAMB36.
    c = count_cells({"LUT6": 10, "LUT2": 3, "INV": 1, "RAM64M": 2, "RAM64X1D": 1, "SRLC32E": 5,
                     "FDRE": 7, "FDCE": 1, "RAMB18E1": 3, "RAMB36E1": 2, "DSP48E1": 4, "CARRY4": 6,
                     "MUXF7": 2, "$check": 1, "GND": 1})
    assert c["LUT_logic"] == 14
    assert c["LUTRAM"] == 2 * 4 + 2 + 5 and c["SRL"] == 5
    assert c["LUT"] == 14 + 15
    assert c["FF"] == 8
    assert c["BRAM36"] == 3.5
    assert (c["DSP"], c["CARRY"], c["MUXF7"]) == (4, 6, 2)
    assert c["other"] == {"$check": 1}


def test_family_for_every_board_part():
    assert family_for_part(load_board("pynq-z2").part) == "xc7"
    for board in ("zcu104", "ultra96-v2", "kv260", "u250"):
        assert family_for_part(load_board(board).part) == "xcup", board
    with pytest.raises(UserError, match="no yosys synth_xilinx family"):
        family_for_part("xc2s50")
