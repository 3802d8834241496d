"""Every work-around that finn-plus needs to run here, without Vivado/Vitis, in one place.

finn-plus is written to be started by its own CLI (`finn build`), which sets up global
settings and loads Vivado's XSI simulator; that CLI needs the network, and XSI needs Vivado.
This module:
  * initialises FINN's settings for a build folder (what the CLI would do);
  * lets `finn.builder.build_dataflow_steps` be imported when XILINX_VIVADO is unset: the
    XSI names it imports become placeholders that raise VendorToolMissing if a step really
    tries to simulate (FINN's rtlsim needs Vivado XSim);
  * tells whether Vivado / Vitis HLS are on PATH (missing_vendor_tools);
  * sends FINN's log to a file (SetFolding warns about every layer that misses a target:
    dozens of lines per folding trial);
  * lets FINN's builder (build_dataflow_cfg) finish without Vivado (it asks for the Vivado
    version when it writes its metadata) and gives back the terminal and the logging set-up it
    takes over while it runs (finn_builder_session);
Import FINN through `import_finn()` and nothing here leaks into the rest of the flow.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path


class VendorToolMissing(RuntimeError):
    """A step needs Vivado or Vitis HLS, which are not installed."""


def missing_vendor_tools() -> str | None:
    """What is missing for FINN's vendor steps (ipgen needs Vitis HLS, the rest Vivado), or None."""
    missing = []
    if not os.environ.get("XILINX_VIVADO") or shutil.which("vivado") is None:
        missing.append("Vivado (XILINX_VIVADO unset or vivado not on PATH)")
    if shutil.which("vitis_hls") is None and shutil.which("vivado_hls") is None:
        missing.append("Vitis HLS (vitis_hls not on PATH)")
    return " and ".join(missing) + " not found" if missing else None


def _xsi_placeholder(name: str):
    def missing(*args, **kwargs):
        raise VendorToolMissing(f"finn.xsi.{name}: FINN's RTL simulation needs Vivado XSim "
                                "(XILINX_VIVADO is not set)")

    return type(name, (), {"__init__": missing}) if name[0].isupper() else missing


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
    import finn.builder.build_dataflow as builder
    import finn.builder.build_dataflow_steps as steps

    if not os.environ.get("XILINX_VIVADO"):
        # exit_buildflow records Path(get_vivado_root()).name, which raises without Vivado
        builder.get_vivado_root = lambda: "no-vivado"
    return steps


@contextmanager
def finn_builder_session():
    """Run FINN's build_dataflow_cfg inside: it replaces sys.stdout / sys.stderr by loggers that
    timestamp every line and re-configures the root logger (basicConfig(force=True)) to its
    build_dataflow.log; afterwards the streams, the root logger's handlers and level, and the
    warnings capture are as they were."""
    root = logging.getLogger()
    saved = (sys.stdout, sys.stderr, list(root.handlers), root.level)
    _quiet_onnxruntime()
    try:
        yield
    finally:
        for handler in root.handlers:
            if handler not in saved[2]:
                handler.close()
        sys.stdout, sys.stderr, root.handlers, _ = saved
        root.setLevel(saved[3])
        logging.captureWarnings(False)


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
