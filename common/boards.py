"""Boards are data: one YAML file per board under boards/ (FINN name, part, shell flow,
clock, resource budget). This module reads and checks them, and says what a design may use."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from common.errors import UserError
from common.yamlfile import read_yaml

BOARDS_DIR = Path(__file__).resolve().parents[1] / "boards"
RESOURCE_KINDS = ("LUT", "FF", "BRAM36", "DSP", "URAM")
SHELL_FLOWS = ("vivado_zynq", "vitis_alveo")
# The share of every resource a build leaves free by default: for the FIFOs between layers (sized
# after folding, by simulation; 7,036 LUT on the default pynq-z2 design) and place-and-route
# headroom. The layers' estimates are close to yosys' counts (flows/folding.py), so what is left
# free is really free; with FINN's HLS estimates of the MVAUs (twice the RTL's logic) 0.15 was.
DEFAULT_MARGIN = 0.2


class DesignTooLarge(UserError):
    """The design does not fit the board; the message carries a per-layer table."""


def check_margin(margin: float) -> None:
    if not 0 <= margin < 1:
        raise UserError(f"--margin must be in [0, 1), got {margin}")


@dataclass(frozen=True)
class Board:
    name: str
    finn_board: str
    part: str
    shell_flow: str
    clock_ns: float
    resources: dict[str, int]
    vitis_platform: str | None = None

    @property
    def clock_mhz(self) -> float:
        return 1000.0 / self.clock_ns


def known_boards(boards_dir: Path = BOARDS_DIR) -> list[str]:
    return sorted(p.stem for p in boards_dir.glob("*.yaml"))


def load_board(name: str, boards_dir: Path = BOARDS_DIR) -> Board:
    path = boards_dir / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"unknown board '{name}' (known: {', '.join(known_boards(boards_dir))})")
    d = read_yaml(path)
    required = {"name", "finn_board", "part", "shell_flow", "clock_ns", "resources"}
    missing = required - set(d or {})
    if missing:
        raise UserError(f"{path}: missing {', '.join(sorted(missing))}")
    if d["shell_flow"] not in SHELL_FLOWS:
        raise UserError(f"{path}: shell_flow must be one of {', '.join(SHELL_FLOWS)}")
    if d["shell_flow"] == "vitis_alveo" and not d.get("vitis_platform"):
        raise UserError(f"{path}: an Alveo board needs vitis_platform")
    res = {k: int(d["resources"].get(k, 0)) for k in RESOURCE_KINDS}
    if min(res["LUT"], res["FF"], res["BRAM36"]) <= 0:
        raise UserError(f"{path}: resources need positive LUT, FF and BRAM36")
    return Board(d["name"], d["finn_board"], d["part"], d["shell_flow"], float(d["clock_ns"]), res,
                 d.get("vitis_platform"))
