"""verify-flow: the lowered graphs of any QONNX model against the model itself, in integers.

The software reference is the QONNX file as given, run by qonnx (flows.reference); where this
project's training checkpoint sits beside it (or --checkpoint names one), the Brevitas model is
compared with that reference too. ``prepare_verification`` is shared with the hardware checks
(flows.verify_rtl, flows.verify_cppsim): it picks the inputs, derives the accelerator's integers from the
model's own input quantizer and runs the references.

Inputs, first that applies: --inputs file.npy (N x C x H x W floats in the model's input range);
--data <data set> (its test images, pixels / 255); the checkpoint's data set; otherwise random
integers over the input quantizer's whole range (the report says so).

Checked stages: finn, streamlined, hw: the graphs FINN's Python executor runs (with the float
tail, flows.float_tail, where the model has one). The dataflow / folded graphs hold the same
layers specialized to HLS / RTL; `python -m hw verify` simulates those.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.boards import load_board
from common.errors import UserError
from flows.build import build_dir_for, load_model, require_quantized_activations
from flows.exactness import CHECKED_STAGES

NOTE = ("dataflow/folded stages: specialized HLS/RTL layers, simulated by `python -m hw verify` "
        "(Verilator, or cppsim with --sim cppsim)")
DATA_SETS = ("fashion_mnist", "mnist", "cifar10", "svhn")
RANDOM_SEED = 0


@dataclass
class Verification:
    """What the checks of one model run on, and what they compare with."""

    model_path: Path
    x: np.ndarray           # float inputs, N x C x H x W, as the QONNX model takes them
    p: np.ndarray           # the integers the accelerator takes (the input quantizer's), N x C x H x W
    labels: np.ndarray | None  # the data set's labels, where the inputs come from one
    source: str             # where the inputs come from, for the report
    reference: object       # flows.reference.QonnxReference
    checkpoint: Path | None = None
    brevitas: list | None = None  # flows.exactness.brevitas_reference of the checkpoint
    accelerator_input: str = ""   # what makes the accelerator's integers (flows.reference.accelerator_input)

    @property
    def images(self) -> int:
        return len(self.p)

    def summary(self) -> dict:
        return {"model": str(self.model_path), "inputs": self.source, "images": self.images,
                "reference": f"QONNX model executed by qonnx; integers compared: {self.reference.description}",
                "checkpoint": str(self.checkpoint) if self.checkpoint else None,
                "accelerator_input": self.accelerator_input}


def reference_checkpoint(model_path: Path, checkpoint) -> tuple[Path | None, dict | None]:
    """The Brevitas checkpoint to compare with, and its contents: the one named (UserError when it
    is missing or does not load), else the one beside the model where it loads, else (None, None).

    A .pt beside a downloaded model is nothing the user asked for: where it does not load as this
    trainer's checkpoint (train.checkpoint refuses a file that would run code), verify says so in
    one line and goes on without the Brevitas comparison.
    """
    from train.checkpoint import load_checkpoint

    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        if not checkpoint.is_file():
            raise UserError(f"checkpoint not found: {checkpoint}")
        return checkpoint, load_checkpoint(checkpoint)
    beside = Path(model_path).with_suffix(".pt")
    if not beside.is_file():
        return None, None
    try:
        return beside, load_checkpoint(beside)
    except UserError as e:
        print(f"[verify] {beside.name} beside the model not used, no Brevitas comparison: {e}", file=sys.stderr,
              flush=True)
        return None, None


def _count(n, available: int) -> int:
    if n == "all":
        return available
    n = int(n)
    if n < 1:
        raise UserError(f"--images must be at least 1 (or 'all'), got {n}")
    return min(n, available)


def data_set_inputs(name: str, n, shape: tuple, root=None):
    """The first n test images of a data set as floats (pixels / 255) and their labels."""
    from train.data import load_dataset

    if name not in DATA_SETS:
        raise UserError(f"unknown data set '{name}' for --data (known: {', '.join(DATA_SETS)})")
    ds = load_dataset({"dataset": name, "root": root})
    if tuple(ds.image_shape) != tuple(shape):
        raise UserError(f"data set {name} has {'x'.join(map(str, ds.image_shape))} images; "
                        f"the model takes {'x'.join(map(str, shape))}")
    k = _count(n, len(ds.test_y))
    return ds.test_x[:k].numpy().astype(np.float32) / np.float32(255), ds.test_y[:k].numpy(), f"{name} test set"


def file_inputs(path: Path, n, shape: tuple):
    path = Path(path)
    if not path.is_file():
        raise UserError(f"inputs file not found: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except Exception as e:  # a text file, a pickle, a cut file
        raise UserError(f"cannot read {path} as a .npy array ({type(e).__name__})") from None
    if x.ndim != 4 or tuple(x.shape[1:]) != tuple(shape) or not np.issubdtype(x.dtype, np.number):
        raise UserError(f"{path}: inputs must be N x {' x '.join(map(str, shape))} numbers (the model's input); "
                        f"got {x.dtype} {' x '.join(map(str, x.shape))}")
    k = _count(n, len(x))
    return x[:k].astype(np.float32), None, f"{path.name} ({k} of {len(x)} inputs)"


def random_inputs(iq, n, shape: tuple, seed: int = RANDOM_SEED):
    """Random inputs over the range of the model's input (flows.reference.accelerator_input)."""
    k = 100 if n == "all" else _count(n, 1 << 30)
    x, source = iq.random(k, shape, seed)
    return x, None, source


def prepare_verification(model_path, images=100, checkpoint=None, data: str | None = None,
                         inputs=None, data_root=None) -> Verification:
    """Inputs, integers and references for verifying ``model_path`` (see the module docstring)."""
    from flows.exactness import brevitas_reference
    from flows.reference import accelerator_input, run_qonnx_reference
    from train.checkpoint import model_from_checkpoint

    model_path = Path(model_path)
    qonnx = load_model(model_path)
    require_quantized_activations(qonnx, model_path)
    iq = accelerator_input(qonnx, model_path)
    shape = tuple(qonnx.get_tensor_shape(qonnx.graph.input[0].name)[1:])
    checkpoint, ckpt = reference_checkpoint(model_path, checkpoint)
    brevitas, data_cfg = (model_from_checkpoint(ckpt), ckpt["config"]["data"]) if ckpt else (None, None)
    if inputs is not None:
        x, y, source = file_inputs(inputs, images, shape)
    elif data is not None or data_cfg is not None:
        name, root = (data, data_root) if data is not None else (data_cfg.get("dataset", "fashion_mnist"),
                                                                 data_root or data_cfg.get("root"))
        x, y, source = data_set_inputs(name, images, shape, root)
        x = iq.from_images(x)
    else:
        x, y, source = random_inputs(iq, images, shape)
    p = iq.to_integers(x)
    x_q = iq.qonnx_inputs(x, p)  # what the QONNX model is fed: the same integers come out of it
    reference = run_qonnx_reference(qonnx, x_q, iq.scale, progress=len(x_q) > 100)
    v = Verification(model_path, x_q, p, y, source, reference, checkpoint, accelerator_input=iq.description())
    if brevitas is not None:
        v.brevitas = brevitas_reference(brevitas, x_q)
    return v


def stage_section(r) -> dict:
    return {"images": r.images, "labels_equal": r.labels_equal, "integers_equal": r.integers_equal,
            "first_mismatches": r.mismatches[:3]}


def verify_flow(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None, images=100,
                data: str | None = None, inputs=None) -> dict:
    from flows.exactness import check_exactness, compare_with_brevitas
    from flows.finn_env import finn_log_to
    from flows.lowering import lower_wrn
    from flows.report import update_report

    board = load_board(board_name)
    v = prepare_verification(model_path, images, checkpoint, data, inputs)
    build_dir = build_dir_for(v.model_path, board, Path(out))
    with finn_log_to(build_dir / "finn.log"):
        stages = lower_wrn(v.model_path, build_dir / "verify", finn_dir=build_dir / "codegen")
        results = check_exactness(v.reference, {k: stages[k] for k in CHECKED_STAGES}, v.p)
    if v.brevitas is not None:
        results = {"brevitas": compare_with_brevitas(v.reference, v.brevitas), **results}
    section = {**v.summary(), "passed": all(r.passed for r in results.values()),
               "stages": {k: stage_section(r) for k, r in results.items()}, "note": NOTE}
    update_report(build_dir, "exactness", section)
    return section
