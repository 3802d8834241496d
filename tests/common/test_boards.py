import pytest

from common.boards import BOARDS_DIR, known_boards, load_board
from common.errors import UserError

REQUIRED = ["pynq-z2", "pynq-z1", "zcu104", "ultra96-v2", "kv260", "u250"]


def test_the_required_boards_are_described():
    assert set(REQUIRED) <= set(known_boards())


@pytest.mark.parametrize("name", REQUIRED)
def test_board_files_are_complete(name):
    b = load_board(name)
    assert b.name == name and b.part and b.finn_board and b.clock_ns > 0
    assert all(b.resources[k] > 0 for k in ("LUT", "FF", "BRAM36", "DSP"))


def test_pynq_z2_is_the_xc7z020_with_its_datasheet_budget():
    b = load_board("pynq-z2")
    assert b.part == "xc7z020clg400-1" and b.shell_flow == "vivado_zynq" and b.clock_mhz == 100.0
    assert (b.resources["LUT"], b.resources["FF"], b.resources["BRAM36"], b.resources["DSP"]) == (53200, 106400, 140, 220)


def test_finn_knows_every_board_and_part():
    """The board data must agree with finn-plus's own part tables."""
    from finn.util.basic import alveo_default_platform, alveo_part_map, pynq_part_map

    for name in known_boards():
        b = load_board(name)
        table = alveo_part_map if b.shell_flow == "vitis_alveo" else pynq_part_map
        assert table.get(b.finn_board) == b.part, name
        if b.shell_flow == "vitis_alveo":
            assert alveo_default_platform[b.finn_board] == b.vitis_platform


def test_unknown_board_lists_the_known_ones():
    with pytest.raises(UserError) as e:
        load_board("de10-nano")
    assert "unknown board 'de10-nano'" in str(e.value)
    assert all(n in str(e.value) for n in REQUIRED)


def test_board_file_with_a_key_twice(tmp_path):
    (tmp_path / "twice.yaml").write_text((BOARDS_DIR / "pynq-z2.yaml").read_text() + "clock_ns: 5.0\n")
    with pytest.raises(UserError, match="twice.yaml is not valid YAML: key 'clock_ns' appears twice"):
        load_board("twice", tmp_path)


def test_incomplete_board_file(tmp_path):
    (tmp_path / "half.yaml").write_text("name: half\npart: xc7z020clg400-1\n")
    with pytest.raises(UserError, match="missing .*clock_ns"):
        load_board("half", tmp_path)
