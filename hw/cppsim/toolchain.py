"""What FINN's cppsim needs from Vitis HLS, without Vitis: FINN's HLS layers compile with g++
against finn-hlslib and the Apache-2.0 ap_types headers of the hls4ml wheel.

FINN's own transformations do the work (``PrepareCppSim`` writes each HLS node's C++ test
bench, ``CompileCppSim`` builds it with FINN's ``CppBuilder``); this module only provides what
Vitis HLS would otherwise provide. FINN's compile line (HLSBackend.compile_singlenode_code) is

    g++ ... -I<finn>/templates/npy2stream -I$FINN_DEPS/finn-hlslib -I$FINN_DEPS/attention-hlslib
        -I$FINN_CUSTOM_HLS -I$XILINX_HLS/include --std=c++17 -O3 ... -lz
        -L$XILINX_HLS/lnx64/lib/csim -lhlsmc++-GCC46
        -L$XILINX_HLS/lnx64/tools/fpo_v7_1 -lgmp -lmpfr -lIp_floating_point_v7_1_bitacc_cmodel

so ``toolchain_dir`` writes a folder that stands in for $XILINX_HLS:

  * ``include/``: hls4ml's ap_types headers (ap_int.h, ap_fixed.h, hls_stream.h, ...), copied
    from the installed hls4ml package, with the shim headers of ``hw/cppsim/include/``:
    ``ap_int.h`` (hls4ml's, kept as ``hls4ml/ap_int.h``, plus the ``half`` type that Vitis's
    ap_int.h brings along and FINN's cnpy.h names), ``hls_math.h`` (hls4ml's plus the float
    ``hls::exp/rsqrt/lrint`` of HWSoftmax and LayerNorm), ``hls_vector.h`` (``hls::vector``,
    which FINN's vector-interface layers and finn-hlslib's pool functors use) and
    ``ap_axi_sdata.h`` (``ap_axis`` / ``ap_axiu`` / ``hls::axis`` / ``qdma_axis``); and one line
    added to hls4ml's ap_int_base.h (``sign_flag``, see HEADER_PATCHES);
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
from contextlib import contextmanager
from pathlib import Path

from common.errors import UserError

REPO = Path(__file__).resolve().parents[2]
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



# The shim headers (hw/cppsim/include/): each stands in for a Vitis header; where hls4ml ships
# one of the same name (ap_int.h, hls_math.h), hls4ml's is kept as hls4ml/<name> and the shim
# includes it, adding what Vitis's has and hls4ml's lacks.
SHIM_DIR = Path(__file__).resolve().parent / "include"
WRAPPED = ("ap_int.h", "hls_math.h")
# Small insertions into hls4ml's own headers, where a shim cannot add a class member from
# outside: (file, the line inserted after, the inserted line). Vitis's ap_int_base has a
# static ``sign_flag`` (finn-hlslib's LabelSelect_Batch asserts on it); hls4ml's has not.
HEADER_PATCHES = (
    ("ap_int_base.h", "  static const int width = _AP_W;\n",
     "  static const bool sign_flag = _AP_S;  // wrn1bit: as Vitis's ap_int_base has it\n"),
)


def shim_headers() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(SHIM_DIR.glob("*.h"))}


def _fingerprint(src: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(src.rglob("*.h")):
        h.update(str(p.relative_to(src)).encode() + b"\0" + p.read_bytes())
    for name, text in shim_headers().items():
        h.update(name.encode() + b"\0" + text.encode())
    h.update(repr(HEADER_PATCHES).encode())
    return h.hexdigest()


def _patch_header(path: Path, after: str, line: str) -> None:
    text = path.read_text()
    if text.count(after) != 1:
        raise CppSimUnavailable(f"cppsim: hls4ml's {path.name} is not the one hw/cppsim expects "
                                f"({after.strip()!r} found {text.count(after)} times; hls4ml=={HLS4ML_VERSION} has it once)")
    path.write_text(text.replace(after, after + line))


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
    for name in WRAPPED:
        (inc / name).rename(inc / "hls4ml" / name)
    for name, after, line in HEADER_PATCHES:
        _patch_header(inc / name, after, line)
    shims = shim_headers()
    for name, text in shims.items():
        (inc / name).write_text(text)
    (inc / "README").write_text(
        f"Written by hw/cppsim: hls4ml {HLS4ML_VERSION}'s ap_types headers (Apache-2.0, see their headers; "
        f"{', '.join(WRAPPED)} moved to hls4ml/; {', '.join(n for n, _, _ in HEADER_PATCHES)} with one line added, "
        f"see HEADER_PATCHES in hw/cppsim/toolchain.py), and {', '.join(shims)} from hw/cppsim/include/. "
        "This folder is passed to FINN as XILINX_HLS for its cppsim compile line.\n")
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


