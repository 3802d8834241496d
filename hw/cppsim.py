"""cppsim without Vitis: FINN's HLS layers compiled with g++ and run as C++ programs (FINN's
exec_mode "cppsim"), against finn-hlslib and the Apache-2.0 ap_types headers of the hls4ml wheel.

FINN's own transformations do the work (``PrepareCppSim`` writes each HLS node's C++ test
bench, ``CompileCppSim`` builds it with FINN's ``CppBuilder``); this module only provides what
Vitis HLS would otherwise provide. FINN's compile line (HLSBackend.compile_singlenode_code) is

    g++ ... -I<finn>/templates/npy2stream -I$FINN_DEPS/finn-hlslib -I$FINN_DEPS/attention-hlslib
        -I$FINN_CUSTOM_HLS -I$XILINX_HLS/include --std=c++17 -O3 ... -lz
        -L$XILINX_HLS/lnx64/lib/csim -lhlsmc++-GCC46
        -L$XILINX_HLS/lnx64/tools/fpo_v7_1 -lgmp -lmpfr -lIp_floating_point_v7_1_bitacc_cmodel

so ``toolchain_dir`` writes a folder that stands in for $XILINX_HLS:

  * ``include/``: hls4ml's ap_types headers (ap_int.h, ap_fixed.h, hls_stream.h, ...), copied
    from the installed hls4ml package, with three small headers written here:
    ``ap_int.h`` (hls4ml's ap_int.h, kept as ``hls4ml/ap_int.h``, plus the ``half`` type that
    Vitis's ap_int.h brings along and FINN's cnpy.h names), ``hls_vector.h`` (``hls::vector``,
    which FINN's npy2vectorstream.hpp and its vector-interface layers use) and
    ``ap_axi_sdata.h`` (``ap_axis`` / ``ap_axiu`` / ``hls::axis``);
  * ``lnx64/...``: empty archives named like the Vitis C-simulation libraries FINN links by
    name. hls4ml's headers are header-only and call none of them; an empty archive provides
    no symbol, so code that did need one would fail to link, loudly.

finn-hlslib itself is on no registry reachable from this project's machines: it is taken from
FINN's dependency folder (FINN_DEPS, which finn-plus fills with ``finn deps update``). Where it
is missing, ``require_cppsim`` raises one line saying what is missing and where it looked.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from train.errors import UserError

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / "build" / "cppsim-toolchain"
HLS4ML_VERSION = "1.3.0"
# the libraries FINN's compile line links by name, in the folders it names under $XILINX_HLS
VITIS_LINK_LIBS = {
    "lnx64/lib/csim": ["hlsmc++-GCC46"],
    "lnx64/tools/fpo_v7_1": ["gmp", "mpfr", "Ip_floating_point_v7_1_bitacc_cmodel"],
}
_EMPTY_AR = b"!<arch>\n"


class CppSimUnavailable(UserError):
    """finn-hlslib, the ap_types headers or g++ is missing: cppsim cannot run here."""


class CppSimBuildError(UserError):
    """g++ rejected the C++ FINN generated for a node."""


# -- what cppsim needs and where it looked ---------------------------------------------------

def finn_hlslib_dir() -> Path:
    """Where FINN looks for finn-hlslib: $FINN_DEPS/finn-hlslib (finn-plus's settings; FINN_DEPS
    must be set before finn is set up, e.g. ``FINN_DEPS=/path make test``)."""
    from finn.util.settings import get_settings

    return Path(get_settings().finn_deps) / "finn-hlslib"


def pinned_hlslib_commit() -> str | None:
    """The finn-hlslib commit finn-plus pins in its dependency list, if it can be read."""
    try:
        import yaml
        from finn.util.settings import get_settings

        deps = yaml.safe_load(Path(get_settings().finn_deps_definitions).read_text())
        return str(deps["git_deps"]["finn-hlslib"]["commit"])
    except Exception:  # noqa: BLE001  (only used to make a message more helpful)
        return None


def ap_types_dir() -> Path | None:
    """hls4ml's ap_types folder in the installed hls4ml package (found without importing
    hls4ml, whose Python dependencies are not installed: only its headers are used)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    return d if (d / "ap_int.h").is_file() and (d / "hls_stream.h").is_file() else None


def missing_header_tools() -> str | None:
    """What the header part needs (g++, hls4ml's headers), or None."""
    missing = []
    if shutil.which("g++") is None:
        missing.append("g++ (not on PATH)")
    if ap_types_dir() is None:
        missing.append(f"the ap_types headers of hls4ml=={HLS4ML_VERSION} (not installed; `make venv` installs "
                       f"it: pip install --no-deps hls4ml=={HLS4ML_VERSION})")
    return "; ".join(missing) or None


def missing_cppsim_tools() -> str | None:
    """What FINN's cppsim needs and is missing here (one line), or None. finn must be set up
    (flows.finn_env.import_finn) so that FINN's dependency folder is known."""
    missing = []
    hlslib = finn_hlslib_dir()
    if not (hlslib / "bnn-library.h").is_file():
        commit = pinned_hlslib_commit()
        pin = f" at commit {commit[:12]}" if commit else ""
        missing.append(f"finn-hlslib (no bnn-library.h in {hlslib}; set FINN_DEPS to a folder holding a "
                       f"finn-hlslib checkout{pin}, which is on no package registry)")
    header = missing_header_tools()
    if header:
        missing.append(header)
    return "cppsim needs " + "; ".join(missing) if missing else None


def require_cppsim() -> None:
    """Raise CppSimUnavailable (one line) when cppsim cannot run here."""
    why = missing_cppsim_tools()
    if why:
        raise CppSimUnavailable(why)


# -- the folder that stands in for $XILINX_HLS ------------------------------------------------

AP_INT_SHIM = """\
// Written by hw/cppsim.py (wrn1bit). hls4ml's ap_int.h (Apache-2.0, Xilinx's open-source
// ap_types, kept as hls4ml/ap_int.h) plus the `half` type that Vitis's ap_int.h brings along:
// FINN's cnpy.h names it when it maps C++ types to npy type codes.
#ifndef WRN1BIT_AP_INT_SHIM_H
#define WRN1BIT_AP_INT_SHIM_H
#include "hls4ml/ap_int.h"
#ifndef _HLS_HALF_DEFINED_
#define _HLS_HALF_DEFINED_
typedef _Float16 half;
#endif
#endif
"""

HLS_VECTOR = """\
// Written by hw/cppsim.py (wrn1bit): hls::vector for C simulation with g++, the part of Vitis's
// interface that FINN's generated test benches and finn-hlslib use: N elements of T, indexing,
// broadcast and list construction, element-wise arithmetic / bitwise / shift operators with a
// vector or a scalar, equality over all elements, reductions.
#ifndef WRN1BIT_HLS_VECTOR_H
#define WRN1BIT_HLS_VECTOR_H
#include <array>
#include <cstddef>
#include <initializer_list>
#include <ostream>

namespace hls {

template <typename T, std::size_t N>
class vector {
  static_assert(N > 0, "hls::vector needs at least one element");
  std::array<T, N> data_;

 public:
  typedef T value_type;
  vector() : data_() {}
  vector(const T &x) { data_.fill(x); }
  vector(std::initializer_list<T> list) : data_() {
    std::size_t i = 0;
    for (const T &x : list) {
      if (i == N) break;
      data_[i++] = x;
    }
  }
  vector(const std::array<T, N> &a) : data_(a) {}
  static constexpr std::size_t size() { return N; }
  T &operator[](std::size_t i) { return data_[i]; }
  const T &operator[](std::size_t i) const { return data_[i]; }
  operator std::array<T, N>() const { return data_; }
  T *begin() { return data_.data(); }
  T *end() { return data_.data() + N; }
  const T *begin() const { return data_.data(); }
  const T *end() const { return data_.data() + N; }

#define WRN1BIT_VEC_OP(OP)                                                   \\
  vector &operator OP##=(const vector &r) {                                  \\
    for (std::size_t i = 0; i < N; i++) data_[i] OP## = r.data_[i];          \\
    return *this;                                                            \\
  }                                                                          \\
  vector &operator OP##=(const T &r) {                                       \\
    for (std::size_t i = 0; i < N; i++) data_[i] OP## = r;                   \\
    return *this;                                                            \\
  }                                                                          \\
  friend vector operator OP(vector l, const vector &r) { return l OP## = r; } \\
  friend vector operator OP(vector l, const T &r) { return l OP## = r; }      \\
  friend vector operator OP(const T &l, const vector &r) { return vector(l) OP## = r; }
  WRN1BIT_VEC_OP(+)
  WRN1BIT_VEC_OP(-)
  WRN1BIT_VEC_OP(*)
  WRN1BIT_VEC_OP(/)
  WRN1BIT_VEC_OP(%)
  WRN1BIT_VEC_OP(&)
  WRN1BIT_VEC_OP(|)
  WRN1BIT_VEC_OP(^)
#undef WRN1BIT_VEC_OP

  vector &operator<<=(int s) {
    for (std::size_t i = 0; i < N; i++) data_[i] <<= s;
    return *this;
  }
  vector &operator>>=(int s) {
    for (std::size_t i = 0; i < N; i++) data_[i] >>= s;
    return *this;
  }
  friend vector operator<<(vector l, int s) { return l <<= s; }
  friend vector operator>>(vector l, int s) { return l >>= s; }
  vector operator-() const {
    vector r;
    for (std::size_t i = 0; i < N; i++) r.data_[i] = -data_[i];
    return r;
  }
  vector operator~() const {
    vector r;
    for (std::size_t i = 0; i < N; i++) r.data_[i] = ~data_[i];
    return r;
  }
  friend bool operator==(const vector &l, const vector &r) {
    for (std::size_t i = 0; i < N; i++)
      if (!(l.data_[i] == r.data_[i])) return false;
    return true;
  }
  friend bool operator!=(const vector &l, const vector &r) { return !(l == r); }

  T reduce_add() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++) r += data_[i];
    return r;
  }
  T reduce_mult() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++) r *= data_[i];
    return r;
  }
  T reduce_max() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++)
      if (r < data_[i]) r = data_[i];
    return r;
  }
  T reduce_min() const {
    T r = data_[0];
    for (std::size_t i = 1; i < N; i++)
      if (data_[i] < r) r = data_[i];
    return r;
  }
  friend std::ostream &operator<<(std::ostream &os, const vector &v) {
    os << "{";
    for (std::size_t i = 0; i < N; i++) os << (i ? ", " : "") << v.data_[i];
    return os << "}";
  }
};

}  // namespace hls
#endif
"""

AP_AXI_SDATA = """\
// Written by hw/cppsim.py (wrn1bit): the AXI-stream word types of Vitis's ap_axi_sdata.h for C
// simulation with g++ (FINN's TLastMarker names ap_axiu): data plus the side channels, a
// side channel of width 0 kept as one bit, as Vitis does.
#ifndef WRN1BIT_AP_AXI_SDATA_H
#define WRN1BIT_AP_AXI_SDATA_H
#include <cstddef>
#include "ap_int.h"

// one AXI-stream beat with its side channels; ap_axis (signed data) and ap_axiu (unsigned)
template <typename Data, int D, int U, int TI, int TD>
struct wrn1bit_axis_beat {
  Data data;
  ap_uint<(D + 7) / 8> keep;
  ap_uint<(D + 7) / 8> strb;
  ap_uint<(U > 0) ? U : 1> user;
  ap_uint<1> last;
  ap_uint<(TI > 0) ? TI : 1> id;
  ap_uint<(TD > 0) ? TD : 1> dest;
};

template <int D, int U, int TI, int TD>
struct ap_axis : wrn1bit_axis_beat<ap_int<D>, D, U, TI, TD> {};

template <int D, int U, int TI, int TD>
struct ap_axiu : wrn1bit_axis_beat<ap_uint<D>, D, U, TI, TD> {};

namespace hls {
template <typename T, std::size_t U = 0, std::size_t TI = 0, std::size_t TD = 0>
struct axis {
  T data;
  ap_uint<sizeof(T)> keep;
  ap_uint<sizeof(T)> strb;
  ap_uint<(U > 0) ? U : 1> user;
  ap_uint<1> last;
  ap_uint<(TI > 0) ? TI : 1> id;
  ap_uint<(TD > 0) ? TD : 1> dest;
};
}  // namespace hls
#endif
"""

SHIMS = {"ap_int.h": AP_INT_SHIM, "hls_vector.h": HLS_VECTOR, "ap_axi_sdata.h": AP_AXI_SDATA}


def _fingerprint(src: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(src.rglob("*.h")):
        h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes())
    for name, text in sorted(SHIMS.items()):
        h.update(name.encode() + b"\0" + text.encode())
    return h.hexdigest()


def toolchain_dir(out: str | Path | None = None) -> Path:
    """Write (once per header version) the folder that stands in for $XILINX_HLS; return it."""
    src = ap_types_dir()
    if src is None:
        raise CppSimUnavailable(f"cppsim needs {missing_header_tools()}")
    root = Path(out) if out is not None else DEFAULT_DIR
    stamp = root / ".fingerprint"
    fp = _fingerprint(src)
    if stamp.is_file() and stamp.read_text() == fp:
        return root
    tmp = root.with_name(root.name + f".tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    inc = tmp / "include"
    shutil.copytree(src, inc)
    (inc / "hls4ml").mkdir()
    (inc / "ap_int.h").rename(inc / "hls4ml" / "ap_int.h")
    for name, text in SHIMS.items():
        (inc / name).write_text(text)
    (inc / "README").write_text(
        f"Written by hw/cppsim.py: hls4ml {HLS4ML_VERSION}'s ap_types headers (Apache-2.0, see their "
        f"headers; ap_int.h moved to hls4ml/ap_int.h) from {src}, and {', '.join(SHIMS)} written by "
        "hw/cppsim.py. This folder is passed to FINN as XILINX_HLS for its cppsim compile line.\n")
    for sub, libs in VITIS_LINK_LIBS.items():
        (tmp / sub).mkdir(parents=True)
        for lib in libs:
            (tmp / sub / f"lib{lib}.a").write_bytes(_EMPTY_AR)
    (tmp / ".fingerprint").write_text(fp)
    shutil.rmtree(root, ignore_errors=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(root)
    return root


def include_flags(out: str | Path | None = None) -> list[str]:
    """The g++ include flags of the header part alone (for C++ that uses no finn-hlslib)."""
    return [f"-I{toolchain_dir(out) / 'include'}"]


@contextmanager
def vitis_free_env(out: str | Path | None = None):
    """XILINX_HLS pointing at the generated folder, FINN_CUSTOM_HLS at finn-plus's custom_hls
    (FINN's CLI sets it; without it the compile line gets a bare ``-I``), for the duration."""
    from finn.util.settings import get_settings

    saved = {k: os.environ.get(k) for k in ("XILINX_HLS", "FINN_CUSTOM_HLS")}
    os.environ["XILINX_HLS"] = str(toolchain_dir(out))
    os.environ["FINN_CUSTOM_HLS"] = str(get_settings().finn_custom_hls)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


# -- FINN's cppsim on a graph ------------------------------------------------------------------

def hls_nodes(model) -> list:
    from finn.util.fpgadataflow import is_hls_node

    return [n for n in model.graph.node if is_hls_node(n)]


def _first_error(text: str) -> str:
    lines = [ln.strip() for ln in (text or "").splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower():
            return ln
    return lines[0] if lines else "no compiler output"


def compile_cppsim(model, toolchain: str | Path | None = None):
    """FINN's PrepareCppSim and CompileCppSim on every HLS node of ``model``, against finn-hlslib
    and the generated header folder; the HLS nodes' exec_mode becomes "cppsim" (other nodes are
    left as they are). Returns the transformed model; execute it with qonnx's execute_onnx."""
    from finn.transformation.fpgadataflow.compile_cppsim import CompileCppSim
    from finn.transformation.fpgadataflow.prepare_cppsim import PrepareCppSim
    from qonnx.custom_op.registry import getCustomOp

    require_cppsim()
    nodes = hls_nodes(model)
    if not nodes:
        raise UserError("compile_cppsim: the graph has no HLS node (cppsim runs FINN's HLS layers only)")
    unnamed = [n.op_type for n in nodes if not n.name]
    if unnamed:
        raise UserError(f"compile_cppsim: unnamed HLS node(s) {unnamed}; apply GiveUniqueNodeNames first")
    with vitis_free_env(toolchain):
        model = model.transform(PrepareCppSim())
        try:
            model = model.transform(CompileCppSim())
        except subprocess.CalledProcessError as e:
            raise CppSimBuildError(f"g++ failed on FINN's cppsim code: {_first_error(e.stderr or e.output)} "
                                   f"(compile script: {' '.join(map(str, e.cmd))})") from None
    for node in hls_nodes(model):
        op = getCustomOp(node)
        exe = Path(op.get_nodeattr("executable_path") or "")
        if not exe.is_file():
            script = Path(op.get_nodeattr("code_gen_dir_cppsim")) / "compile.sh"
            raise CppSimBuildError(f"{node.name}: no cppsim executable after compiling ({script})")
        op.set_nodeattr("exec_mode", "cppsim")
    return model


def execute_cppsim(model, feed: dict) -> dict:
    """Run a compiled model (compile_cppsim) on ``feed``; every output tensor by name."""
    from qonnx.core.onnx_exec import execute_onnx

    return execute_onnx(model, feed)
