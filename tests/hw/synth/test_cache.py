"""hw.synth.cache: an identical run is taken from result.json; a changed source or cache=False runs yosys."""

from __future__ import annotations

import pytest

from hw.synth.runner import synthesize
from tests.hw.synth.designs import REGISTER, needs_yosys, write


@needs_yosys
@pytest.mark.slow  # two yosys runs
def test_an_identical_run_is_taken_from_the_cache(tmp_path):
    src = write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "3"))
    first = synthesize("reg_n", [src], workdir=tmp_path / "w")
    again = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert not first.cached and again.cached and (again.FF, again.cells) == (3, {"FDRE": 3})
    write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "4"))  # a changed source runs yosys again
    changed = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert not changed.cached and changed.FF == 4
    assert not synthesize("reg_n", [src], workdir=tmp_path / "w", cache=False).cached
