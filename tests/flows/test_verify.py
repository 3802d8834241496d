"""flows verify on models FINN users write with brevitas.nn themselves (tests.fixtures.user_resnet:
shapes this project's trainer never makes), against the QONNX model run by qonnx; its inputs
options and their one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from common.errors import UserError
from flows.verify import prepare_verification, verify_flow
from tests.fixtures import export_user_model, pattern_images, user_resnet


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    from flows.finn_env import import_finn

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("userverify")
    import_finn(root / ".finn")
    return root


def user_model(root, tail: str, size: int):
    path = root / f"{tail}_{size}.onnx"
    if not path.exists():
        export_user_model(user_resnet(tail=tail, size=size), path, size=size)
    x, _ = pattern_images(6, size, 10, 9, channels=3)
    np.save(root / f"{tail}_{size}_x.npy", x.astype(np.float32) / 255)
    return path, root / f"{tail}_{size}_x.npy"


@pytest.mark.parametrize("tail,size,compared", [
    ("bn_avgpool", 32, "conv"),   # 3x32x32; the last binary conv's accumulators, BN + pool on the host
    ("avgpool", 16, "view"),      # the pooled accumulators (GlobalAccPool), scale into the TopK
    ("linear", 16, "linear"),     # a binary classifier after the pool, its bias on the host
])
def test_user_models_lower_exactly_against_the_qonnx_model(root, tail, size, compared):
    path, npy = user_model(root, tail, size)
    r = verify_flow(path, "pynq-z2", root / "out", images=6, inputs=npy)
    assert r["passed"], r["stages"]
    assert list(r["stages"]) == ["finn", "streamlined", "hw"]  # no checkpoint: no Brevitas row
    assert all(s["labels_equal"] == s["integers_equal"] == 6 for s in r["stages"].values())
    assert compared in r["reference"] and r["inputs"].startswith(npy.name)
    v = prepare_verification(path, 6, inputs=npy)
    assert len({ref.label for ref in v.reference.images}) > 1  # not a degenerate network
    assert len({tuple(ref.integers) for ref in v.reference.images}) == 6
    report = (root / "out" / f"{path.stem}_pynq-z2" / "report.md").read_text()
    assert "Exactness against the QONNX model" in report and "PASSED" in report


def test_input_integers_come_from_the_models_own_input_quantizer(root):
    """The user's input quantizer has a learned scale (not 1/255): the integers are Quant(x) / scale."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.reference import input_quantizer

    path, npy = user_model(root, "avgpool", 16)
    iq = input_quantizer(ModelWrapper(str(path)))
    assert iq.bits == 8 and abs(iq.scale - 1 / 255) > 1e-9
    x = np.load(npy)
    v = prepare_verification(path, 6, inputs=npy)
    assert np.array_equal(v.p, np.clip(np.round(x / np.float32(iq.scale)), 0, 255).astype(np.int64))


def test_random_inputs_cover_the_input_quantizers_range_and_say_so(root):
    path, _ = user_model(root, "avgpool", 16)
    v = prepare_verification(path, 50)
    assert v.p.min() == 0 and v.p.max() == 255 and v.labels is None
    assert "random integers over the input quantizer's whole range UINT8 [0, 255]" in v.source


def test_bad_inputs_get_one_line(root, tmp_path):
    path, _ = user_model(root, "avgpool", 16)
    np.save(tmp_path / "wrong.npy", np.zeros((4, 1, 28, 28), np.float32))
    with pytest.raises(UserError, match=r"inputs must be N x 3 x 16 x 16 numbers .*got float32 4 x 1 x 28 x 28"):
        prepare_verification(path, 4, inputs=tmp_path / "wrong.npy")
    with pytest.raises(UserError, match="inputs file not found"):
        prepare_verification(path, 4, inputs=tmp_path / "missing.npy")
    with pytest.raises(UserError, match="unknown data set 'imagenet'"):
        prepare_verification(path, 4, data="imagenet")
    with pytest.raises(UserError, match="checkpoint not found"):
        prepare_verification(path, 4, checkpoint=tmp_path / "missing.pt")


def test_a_model_without_input_quantizer_is_refused_in_one_line(tmp_path, capsys):
    import brevitas.nn as qnn
    from brevitas.quant import SignedBinaryWeightPerTensorConst

    from wrn1bit.cli import main

    torch.manual_seed(0)
    m = torch.nn.Sequential(qnn.QuantConv2d(1, 4, 3, bias=False, weight_quant=SignedBinaryWeightPerTensorConst),
                            qnn.QuantReLU(bit_width=2)).eval()
    path = export_user_model(m, tmp_path / "noinput.onnx", in_ch=1, size=8)
    assert main(["verify-flow", "--model", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {path} has no input quantizer (its input")


def test_a_model_the_flow_cannot_lower_is_refused_by_verify_as_by_build(tmp_path, capsys):
    """A 4-bit-weight conv: `wrn1bit build`, `verify-flow` and `verify` print the same one line."""
    import brevitas.nn as qnn
    from brevitas.quant import Uint8ActPerTensorFloat

    from wrn1bit.cli import main

    torch.manual_seed(0)
    m = torch.nn.Sequential(qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat),
                            qnn.QuantConv2d(1, 4, 3, bias=False, weight_bit_width=4),
                            qnn.QuantReLU(bit_width=2)).eval()
    path = export_user_model(m, tmp_path / "w4.onnx", in_ch=1, size=8)
    lines = []
    for argv in (["build", "--no-synth"], ["verify-flow"], ["verify"]):
        assert main([*argv, "--model", str(path), "--out", str(tmp_path / "out")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1
        lines.append(err[0])
    assert lines[0].startswith(f"error: cannot lower {path} to FINN hardware layers: ")
    assert lines[0] == lines[1] == lines[2]


def test_verify_builds_with_the_given_margin_and_refuses_a_bad_one_as_build_does(tmp_path, capsys):
    """`wrn1bit verify --margin` folds as `wrn1bit build --margin` (so that a design built with a
    margin is the one verified); a margin outside [0, 1) is the same one line from both."""
    from wrn1bit.cli import main

    for argv in (["build", "--no-synth"], ["verify"]):
        assert main([*argv, "--margin", "1.5", "--out", str(tmp_path / "out")]) == 2
        assert capsys.readouterr().err.strip().splitlines() == ["error: --margin must be in [0, 1), got 1.5"]
