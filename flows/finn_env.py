"""Every work-around that finn-plus needs to run here, without Vivado/Vitis, in one place.

finn-plus is written to be started by its own CLI (`finn build`), which sets up global
settings and loads Vivado's XSI simulator; that CLI needs the network, and XSI needs Vivado.
This module:
  * initialises FINN's settings for a build folder (what the CLI would do);
  * lets `finn.builder.build_dataflow_steps` be imported when XILINX_VIVADO is unset: the
    XSI names it imports become placeholders that raise VendorToolMissing if a step really
    tries to simulate (FINN's rtlsim needs Vivado XSim);
  * tells whether Vivado / Vitis HLS are on PATH;
  * sends FINN's log to a file (SetFolding warns about every layer that misses a target:
    dozens of lines per folding trial);
  * packs weights/thresholds to hex strings without bitstring 5 (finn-plus' code generation
    uses bitstring 4 API that bitstring 5.0 removed: `BitArray(length=n)` and `.len`).
Import FINN through `import_finn()` and nothing here leaks into the rest of the flow.
"""

from __future__ import annotations

import logging
import os
import shutil
from contextlib import contextmanager
from pathlib import Path


class VendorToolMissing(RuntimeError):
    """A step needs Vivado or Vitis HLS, which are not installed."""


def vivado_available() -> bool:
    return bool(os.environ.get("XILINX_VIVADO")) and shutil.which("vivado") is not None


def vitis_hls_available() -> bool:
    return shutil.which("vitis_hls") is not None or shutil.which("vivado_hls") is not None


def _xsi_placeholder(name: str):
    def missing(*args, **kwargs):
        raise VendorToolMissing(f"finn.xsi.{name}: FINN's RTL simulation needs Vivado XSim "
                                "(XILINX_VIVADO is not set)")

    return type(name, (), {"__init__": missing}) if name[0].isupper() else missing


def _bitstring_major() -> int:
    from importlib.metadata import version

    return int(version("bitstring").split(".")[0])


def array_to_hexstring(array, dtype, pad_to_nbits: int, prefix: str = "0x", reverse: bool = False) -> str:
    """finn.util.data_packing.array2hexstring, packed with Python integers instead of bitstring.

    Same contract: the elements of a 1-D array, first element in the most significant bits
    (last with reverse=True), each in dtype's bit width (two's complement when signed, IEEE
    for floats), zero-padded on the left to pad_to_nbits (at least 4) and written in hex.
    """
    import numpy as np
    from qonnx.core.datatype import DataType

    pad_to_nbits = max(pad_to_nbits, 4)
    values = np.asarray(array, dtype=np.float32)
    assert values.ndim == 1, "The given array is not one-dimensional."
    if dtype == DataType["BIPOLAR"]:  # bipolar {-1, 1} is stored as binary {0, 1}
        values, dtype = (values + 1) / 2, DataType["BINARY"]
    if reverse:
        values = np.flip(values, -1)
    bits = dtype.bitwidth()
    if dtype.is_fixed_point():  # the integer behind the fixed-point value
        values, dtype = values / dtype.scale_factor(), DataType[f"INT{bits}"]
    floats = {16: np.float16, 32: np.float32, 64: np.float64}
    uints = {16: np.uint16, 32: np.uint32, 64: np.uint64}
    packed = 0
    for v in values:
        assert dtype.allowed(v), "This value is not permitted by chosen dtype."
        if dtype.is_integer():
            word = int(v) & ((1 << bits) - 1)  # two's complement for negative values
        else:
            word = int(np.array(v, dtype=floats[bits]).view(uints[bits]))
        packed = (packed << bits) | word
    if bits * len(values) > pad_to_nbits:
        raise Exception("Number of bits is greater than pad_to_nbits")
    if pad_to_nbits % 4:
        raise ValueError(f"cannot write {pad_to_nbits} bits as whole hex digits")
    return prefix + format(packed, f"0{pad_to_nbits // 4}x")


def _patch_hex_packing() -> None:
    """Route FINN's hex packing through array_to_hexstring when bitstring 5+ is installed."""
    if _bitstring_major() < 5:
        return
    import finn.util.data_packing as data_packing

    data_packing.array2hexstring = array_to_hexstring


_initialised: Path | None = None


def import_finn(build_dir: str | Path = "build/.finn"):
    """Make finn-plus importable and usable from Python; return its build-steps module."""
    global _initialised
    build_dir = Path(build_dir).resolve()
    build_dir.mkdir(parents=True, exist_ok=True)
    if _initialised != build_dir:
        os.environ["FINN_BUILD_DIR"] = str(build_dir)
        from finn.util import settings

        settings._SETTINGS = None
        settings.initialize_dummy_settings()
        _initialised = build_dir
    if not os.environ.get("XILINX_VIVADO"):
        import finn.xsi as xsi

        for name in xsi._LAZY_NAMES:
            if name not in vars(xsi):
                setattr(xsi, name, _xsi_placeholder(name))
    _patch_hex_packing()
    import finn.builder.build_dataflow_steps as steps

    return steps


def _quiet_onnxruntime() -> None:
    """onnxruntime's C++ logger warns on stderr for every FINN-executed graph (shape merging)."""
    import onnxruntime

    onnxruntime.set_default_logger_severity(3)  # errors only


@contextmanager
def finn_log_to(path: str | Path):
    """Send FINN's logger and Python warnings (qonnx warns per transformation) to a file."""
    loggers = [logging.getLogger("finn_logger"), logging.getLogger("py.warnings")]
    saved = [(list(lg.handlers), lg.propagate, lg.level) for lg in loggers]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, mode="a")
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    for lg in loggers:
        lg.handlers, lg.propagate = [handler], False
        lg.setLevel(logging.INFO)
    logging.captureWarnings(True)
    _quiet_onnxruntime()
    try:
        yield
    finally:
        logging.captureWarnings(False)
        for lg, (handlers, propagate, level) in zip(loggers, saved):
            lg.handlers, lg.propagate = handlers, propagate
            lg.setLevel(level)
        handler.close()
