"""`wrn1bit <command>`: one console entry point over every stage; the `python -m` forms stay."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from wrn1bit.cli import COMMANDS, main

REPO = Path(__file__).resolve().parents[2]


def test_the_console_script_is_wrn1bit():
    (ep,) = entry_points(group="console_scripts", name="wrn1bit")
    assert ep.value == "wrn1bit.cli:main"


def test_usage_lists_every_command(capsys):
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, (_, _, form, _) in COMMANDS.items():
        assert f"  {name} " in out and f"({form})" in out
    assert main([]) == 2


def test_unknown_command_is_one_line(capsys):
    assert main(["bitstream"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: unknown command 'bitstream' (commands: {', '.join(COMMANDS)})"]


@pytest.mark.parametrize("name", list(COMMANDS))
def test_each_command_shows_its_own_options(name, capsys):
    with pytest.raises(SystemExit) as e:
        main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: wrn1bit {name} ") and "--help" in out


@pytest.mark.parametrize("argv, usage", [
    (["-m", "wrn1bit", "build", "--help"], "usage: wrn1bit build "),
    (["-m", "flows", "build", "--help"], "usage: python -m flows build "),
    (["-m", "flows", "verify", "--help"], "usage: python -m flows verify "),
    (["-m", "hw", "verify", "--help"], "usage: python -m hw verify "),
    (["-m", "train", "--help"], "usage: python -m train "),
])
def test_python_dash_m_forms_still_work(argv, usage):
    proc = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(usage)


def test_python_dash_m_hw_needs_verify():
    proc = subprocess.run([sys.executable, "-m", "hw"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and proc.stderr.startswith("usage: python -m hw verify")
