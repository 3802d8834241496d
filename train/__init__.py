"""Stage 1 of the pipe: train 1-bit-weight WRNs with Brevitas and export them to QONNX."""

from pathlib import Path

_HERE = Path(__file__).resolve().parent
CONFIG_DIR = _HERE / "configs"
# `make train` with no arguments trains this experiment.
DEFAULT_CONFIG = CONFIG_DIR / "fmnist_wrn8_3_w1a2.yaml"
# The committed trained model the later stages (flows/, hw/, bench/) build from by default;
# `make pretrained` writes it (with its .pt beside it) and the Makefile's PRETRAINED names it too.
DEFAULT_MODEL = _HERE / "pretrained" / "fmnist_wrn8_3_w1a2.onnx"
