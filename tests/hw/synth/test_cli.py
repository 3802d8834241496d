"""hw.synth.cli and ``python -m hw.synth``: counts printed against a board, one-line errors."""

from __future__ import annotations

import subprocess
import sys

from hw.synth.cli import main
from tests.hw.synth.designs import REGISTER, needs_yosys, write


@needs_yosys
def test_cli_prints_counts_against_the_board(tmp_path, capsys):
    src = write(tmp_path / "reg_n.v", REGISTER.replace("{n}", "7"))
    assert main(["reg_n", str(src), "--board", "pynq-z2", "--workdir", str(tmp_path / "w")]) == 0
    out = capsys.readouterr().out
    assert "reg_n (xc7, read_" in out
    assert any(line.split()[:2] == ["FF", "7"] and "of pynq-z2's 106400" in line for line in out.splitlines())
    assert main(["reg_n", str(tmp_path / "none.v")]) == 2
    assert "error: source not found" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli():
    # hw.synth is a package: `python -m hw.synth` goes through its __main__.py, which must not be
    # imported by the package itself (runpy would warn on stderr)
    p = subprocess.run([sys.executable, "-m", "hw.synth", "--help"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.startswith("usage: python -m hw.synth ") and p.stderr == ""
    assert "yosys resource estimate of one module" in p.stdout
