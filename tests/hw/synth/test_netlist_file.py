"""hw.synth.runner writes the mapped netlist of every run beside its estimate, and the cache keeps it:
a hit needs the netlist file, a run without it runs yosys again."""

from __future__ import annotations

from hw.synth.runner import NETLIST_FILE, synthesize
from tests.hw.synth.designs import REGISTER, needs_yosys, write


@needs_yosys
def test_the_netlist_is_written_and_cached(tmp_path):
    src = write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "5"))
    first = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert first.netlist == tmp_path / "w" / NETLIST_FILE and not first.cached
    text = first.netlist.read_text()
    assert "module reg_n(" in text and text.count("FDRE ") == 5  # the primitives, not the RTL
    assert "always" not in text
    again = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert again.cached and again.netlist == first.netlist and again.as_dict()["netlist"] == str(first.netlist)
    first.netlist.unlink()  # a result without its netlist is not a hit
    rerun = synthesize("reg_n", [src], workdir=tmp_path / "w")
    assert not rerun.cached and rerun.netlist.read_text() == text
