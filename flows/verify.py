"""verify-flow: the lowered graphs against Brevitas, in integers, on real test images.

Lowers the model as the build does (flows.streamline), runs flows.exactness on a batch of
test images of the model's data set (train.data.load_dataset with the checkpoint's data
config; Fashion-MNIST for the default model) and writes the result into the build report
(report.json "exactness", re-rendered report.md). The Brevitas model comes from the training
checkpoint beside the ONNX file (`make pretrained` writes both).

Checked stages: qonnx, finn, streamlined, hw: the graphs FINN's Python executor runs. The
dataflow / folded graphs hold the same layers specialized to HLS / RTL with PE / SIMD set;
executing those needs cppsim (finn-hlslib, Xilinx headers) or rtlsim (Vivado XSim).
"""

from __future__ import annotations

from pathlib import Path

from flows.boards import load_board
from flows.build import build_dir_for, load_model, require_quantized_activations
from train.errors import UserError

CHECKED_STAGES = ("qonnx", "finn", "streamlined", "hw")
NOTE = ("dataflow/folded stages not executed: specialized HLS/RTL layers need cppsim (finn-hlslib) "
        "or rtlsim (Vivado XSim)")


def load_brevitas(checkpoint: Path):
    from train.checkpoint import load_checkpoint, model_from_checkpoint

    ckpt = load_checkpoint(checkpoint)  # UserError when missing or corrupt
    return model_from_checkpoint(ckpt), ckpt["config"]["data"]


def sample_test_images(data_cfg: dict, n: int):
    from train.data import load_dataset

    ds = load_dataset({"dataset": data_cfg.get("dataset", "fashion_mnist"), "root": data_cfg.get("root")})
    n = min(n, len(ds.test_y))
    x = ds.test_x[:n]
    return x.reshape(n, *ds.image_shape), ds.name


def verify_flow(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None, images: int = 100) -> dict:
    from flows.exactness import check_exactness
    from flows.finn_env import finn_log_to
    from flows.report import update_report
    from flows.streamline import lower_wrn

    if images < 1:
        raise UserError(f"--images must be at least 1, got {images}")
    model_path = Path(model_path)
    board = load_board(board_name)
    require_quantized_activations(load_model(model_path), model_path)
    checkpoint = Path(checkpoint) if checkpoint else model_path.with_suffix(".pt")
    brevitas, data_cfg = load_brevitas(checkpoint)
    x, dataset = sample_test_images(data_cfg, images)
    build_dir = build_dir_for(model_path, board, Path(out))
    with finn_log_to(build_dir / "finn.log"):
        stages = lower_wrn(model_path, build_dir / "verify", finn_dir=build_dir / "codegen")
        results = check_exactness(brevitas, {k: stages[k] for k in CHECKED_STAGES}, x)
    section = {
        "checkpoint": str(checkpoint), "dataset": dataset, "images": int(len(x)),
        "passed": all(r.passed for r in results.values()),
        "stages": {k: {"images": r.images, "labels_equal": r.labels_equal, "integers_equal": r.integers_equal,
                       "first_mismatches": r.mismatches[:3]} for k, r in results.items()},
        "note": NOTE,
    }
    update_report(build_dir, "exactness", section)
    return section
