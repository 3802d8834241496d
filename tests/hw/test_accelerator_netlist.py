"""The whole accelerator as one flattened yosys netlist (`wrn1bit verify --netlist --whole`): a small
residual network (WRN-8-1, 12x12 images, random weights) built, verified and FIFO-sized by `wrn1bit
verify`, then its stitched top synthesized whole and simulated beside the RTL: output words and their
cycles, labels and class-score integers equal to the RTL's and to the QONNX model's, the same cycles
per image as the RTL verification measured. Also: --whole refused where it cannot run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.hw.synth.designs import needs_verilator, needs_yosys


def test_whole_needs_netlist_and_three_images(capsys, tmp_path):
    from flows.cli import main_verify_hw

    assert main_verify_hw(["--whole", "--out", str(tmp_path)]) == 2
    assert "--whole is an option of --netlist" in capsys.readouterr().err
    assert main_verify_hw(["--netlist", "--whole", "--images", "2", "--out", str(tmp_path)]) == 2
    assert "give --images 3 or more" in capsys.readouterr().err


@pytest.mark.slow  # a FINN build, the RTL verification, yosys on the whole design, three Verilator builds
@needs_yosys
@needs_verilator
def test_whole_accelerator_netlist_equals_rtl_and_qonnx(tmp_path):
    from flows.verify_netlist import verify_netlist_layers
    from flows.verify_rtl import verify_accelerator
    from tests.flows.test_lowering import SIZE, small_wrn
    from train.export import export_qonnx

    torch.set_num_threads(1)
    path = export_qonnx(small_wrn("depth8", 2, residual_bits=8), (1, SIZE, SIZE), tmp_path / "wrn8_1.onnx")
    npy = tmp_path / "x.npy"
    images = 6
    np.save(npy, np.random.default_rng(3).integers(0, 256, (images, 1, SIZE, SIZE)).astype(np.float32) / 255)
    out = tmp_path / "out"
    # folded into 30% of the board: the default margin unfolds this small network to 35 k LUT, whose
    # netlist takes Verilator and g++ a quarter of an hour; at a tenth (margin 0.9) the slowest
    # folding leaves over 100 k cycles between output beats, the FIFO sizing's stall limit
    margin = 0.7

    # without the FIFO depths that `wrn1bit verify` sizes, --whole says what to run first
    from common.errors import UserError

    with pytest.raises(UserError, match="run `wrn1bit verify` with the same model, board and margin first"):
        verify_netlist_layers(path, "pynq-z2", out, images=images, inputs=npy, whole=True, margin=margin)

    rtl = verify_accelerator(path, "pynq-z2", out, images=images, inputs=npy, gap_prob=0.3, stall_prob=0.3,
                             margin=margin)
    assert rtl["passed"]
    r = verify_netlist_layers(path, "pynq-z2", out, images=images, inputs=npy, whole=True, gap_prob=0.3,
                              stall_prob=0.3, margin=margin)
    w = r["whole"]
    assert "layers" not in r  # --whole without --layers: no per-layer table
    assert w["images"] == images and w["gap_images"] == 2
    # the netlist is a real mapping: LUTs, flip-flops, block RAM of the weights / thresholds
    assert w["yosys"]["LUT"] > 500 and w["yosys"]["FF"] > 500 and not w["yosys"]["cached"]
    for run in ("no_gaps", "with_gaps"):
        assert w[run] == {k: True for k in w[run]}, (run, w[run])
        assert {"out0_V_words_equal", "out0_V_cycles_equal", "mon0_words_equal", "mon0_cycles_equal"} <= set(w[run])
    assert w["labels_equal_rtl"] == w["scores_equal_rtl"] == images
    assert w["rtl_labels_equal_qonnx"] == w["rtl_scores_equal_qonnx"] == images
    assert w["netlist_labels_equal_qonnx"] == w["netlist_scores_equal_qonnx"] == images
    sim = w["sim"]
    assert sim["rtl"]["cycles_per_image"] == sim["netlist"]["cycles_per_image"] == rtl["cycles_per_image"] > 0
    assert sim["rtl"]["image_end_cycles"] == sim["netlist"]["image_end_cycles"]
    assert sim["rtl"]["cycles_per_s"] > sim["netlist"]["cycles_per_s"] > 0
    assert w["passed"] and r["passed"]
    bdir = next(out.iterdir())
    saved = json.loads((bdir / "verify_netlist.json").read_text())
    assert saved["whole"]["passed"] and saved["whole"]["sim"]["netlist"]["cycles_per_image"] == rtl["cycles_per_image"]
    md = (bdir / "verify_netlist.md").read_text()
    assert "## The whole accelerator as one flattened netlist: **PASSED**" in md
    assert f"| class-score integers vs the QONNX model: RTL / netlist | {images}/{images} / {images}/{images} |" in md
