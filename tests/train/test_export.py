import json

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx

from common.errors import UserError
from tests.fixtures import pattern_images, spread_learned_scales
from train.checkpoint import save_checkpoint
from train.export import check_export, export_checkpoint, export_qonnx
from train.models import build_model

HW = dict(input_bits=8, residual_bits=4, head_bits=8, shortcut="conv")


def warmed_model(seed=0, **cfg):
    """A small model with BN statistics and quantizer scales that are not at their init."""
    torch.manual_seed(seed)
    m = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, **cfg)).train()
    x, _ = pattern_images(64, 12, 10, seed)
    with torch.no_grad():
        for i in range(0, 64, 16):
            m(torch.from_numpy(x[i:i + 16, None]).float() / 255)
    return m.eval()


def images(n=12, seed=7):
    x, y = pattern_images(n, 12, 10, seed)
    return torch.from_numpy(x[:, None]), torch.from_numpy(y.astype(np.int64))


@pytest.mark.parametrize("act_bits", [1, 2, 4])
def test_qonnx_execution_equals_brevitas_integers(tmp_path, act_bits):
    m = warmed_model(act_bits, act_bits=act_bits, **HW)
    path = export_qonnx(m, (1, 12, 12), tmp_path / "m.onnx")
    x, _ = images()
    mw = ModelWrapper(str(path))
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    scale, hw = m.head_scale(), 3 * 3  # 12x12 -> 3x3 after two stride-2 stages
    for i in range(len(x)):  # one image at a time: the graph as exported, batch 1
        xi = x[i:i + 1].float() / 255
        got = execute_onnx(mw, {iname: xi.numpy()})[oname]
        with torch.no_grad():
            ref = m(xi).numpy()
        got_int, ref_int = got * hw / scale, ref * hw / scale
        assert np.abs(ref_int - np.rint(ref_int)).max() < 0.01  # integer-valued pre-scale outputs
        assert np.array_equal(np.rint(got_int).astype(np.int64), np.rint(ref_int).astype(np.int64))
        assert got.argmax() == ref.argmax()


def test_every_exported_conv_holds_two_values(tmp_path):
    m = warmed_model(act_bits=2, **HW)
    path = export_qonnx(m, (1, 12, 12), tmp_path / "m.onnx")
    x, y = images(4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx"]  # self-contained, no temporaries
    report = check_export(m, path, x, y)
    n_convs = sum(isinstance(mod, torch.nn.Conv2d) for mod in m.modules())
    assert report["passed"] and report["conv_layers"] == n_convs == report["conv_layers_two_values"]
    assert report["integers_equal"] == report["labels_equal"] == 4


@pytest.mark.parametrize("method,act_bits", [("bwn", 2), ("bwn_learned", 2), ("sign", 2), ("sign", 1)])
def test_every_weight_method_passes_the_export_check(tmp_path, method, act_bits):
    """Labels, integer pre-scale outputs, and +-a_c per output channel with a_c the method's scale
    (computed in numpy from the latent weights / the learned scale) for W1A2 and W1A1 models."""
    m = warmed_model(act_bits=act_bits, weight_quant=method, act_ste="approxsign", **HW)
    spread_learned_scales(m)
    path = export_qonnx(m, (1, 12, 12), tmp_path / "m.onnx")
    report = check_export(m, path, *images(6))
    assert report["passed"], report
    assert report["conv_layers"] == report["conv_layers_two_values"] == 10
    assert report["integers_equal"] == report["labels_equal"] == 6 and report["weight_quant"] == method
    scales = [numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer
              if t.name in {n.input[1] for n in onnx.load(path).graph.node if n.op_type == "BipolarQuant"}]
    if method.startswith("bwn"):  # one a_c per output channel, not all equal
        weight_scales = [a for a in scales if a.ndim == 4]
        assert len(weight_scales) == 10 and all(len(np.unique(a)) == a.shape[0] for a in weight_scales)
    else:
        assert scales and all(a.size == 1 and a.reshape(-1)[0] == 1.0 for a in scales)  # weights +-1


@pytest.mark.parametrize("method,factor", [("bwn", 1 + 1e-5), ("sign", -1.0)])
def test_check_fails_on_a_wrong_weight_scale(tmp_path, method, factor):
    """One conv's exported scale off by a little (or negated): its weights are still two values
    per channel, but no longer +-a_c of the method, so the check names that conv."""
    m = warmed_model(act_bits=2, weight_quant=method, **HW)
    spread_learned_scales(m)
    path = export_qonnx(m, (1, 12, 12), tmp_path / "m.onnx")
    model = onnx.load(path)
    conv = [n for n in model.graph.node if n.op_type == "Conv"][2]
    bq = next(n for n in model.graph.node if n.output[0] == conv.input[1])
    init = next(t for t in model.graph.initializer if t.name == bq.input[1])
    scale = numpy_helper.to_array(init).copy()
    scale.reshape(-1)[0] *= factor  # channel 0 (or the whole layer for a per-tensor scale)
    init.CopyFrom(numpy_helper.from_array(scale, init.name))
    onnx.save(model, path)
    report = check_export(m, path, *images(3))
    assert not report["passed"] and report["conv_layers_two_values"] == 9
    assert report["bad_conv_layers"][0]["node"] == conv.name
    assert ("differs from the" if factor > 0 else "a_c > 0") in report["bad_conv_layers"][0]["reason"]


def test_full_precision_activations_export_compares_labels(tmp_path):
    m = warmed_model(shortcut="avgpool_pad")  # the paper's setting: 1-bit weights, float activations
    path = export_qonnx(m, (1, 12, 12), tmp_path / "m.onnx")
    report = check_export(m, path, *images(6))
    assert report["passed"] and report["integer_outputs"] is False and report["labels_equal"] == 6


def test_check_fails_on_a_tampered_graph(tmp_path):
    """The check can fail: flip the sign of the head's latent weights in the ONNX file."""
    m = warmed_model(act_bits=2, **HW)
    path = export_qonnx(m, (1, 12, 12), tmp_path / "m.onnx")
    model = onnx.load(path)
    head = [n for n in model.graph.node if n.op_type == "Conv"][-1]
    bq = next(n for n in model.graph.node if n.output[0] == head.input[1])
    init = next(t for t in model.graph.initializer if t.name == bq.input[0])
    init.CopyFrom(numpy_helper.from_array(-numpy_helper.to_array(init), init.name))
    onnx.save(model, path)
    report = check_export(m, path, *images(6))
    assert not report["passed"] and report["integers_equal"] < 6


def test_export_checkpoint_writes_reports(tmp_path, monkeypatch):
    from train.data import Dataset

    m = warmed_model(act_bits=2, **HW)
    cfg = {"data": {"dataset": "fashion_mnist"}, "seed": 0}
    save_checkpoint(tmp_path / "last.pt", m, cfg)
    x, y = images(5)
    ds = Dataset("fashion_mnist", x, y, x, y, 10, "fixture")
    report = export_checkpoint(tmp_path / "last.pt", tmp_path / "model.onnx", images=5, ds=ds)
    assert report["passed"]
    assert json.loads((tmp_path / "model_export_check.json").read_text())["passed"] is True
    assert "PASSED" in (tmp_path / "model_export_check.md").read_text()


def test_full_precision_checkpoint_is_refused(tmp_path):
    m = warmed_model(binary_weights=False)
    save_checkpoint(tmp_path / "fp.pt", m, {})
    with pytest.raises(UserError, match="not a 1-bit-weight model"):
        export_checkpoint(tmp_path / "fp.pt")


def test_corrupt_and_foreign_checkpoints(tmp_path):
    (tmp_path / "bad.pt").write_bytes(b"\x00garbage")
    with pytest.raises(UserError, match="corrupt or not a torch file"):
        export_checkpoint(tmp_path / "bad.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="not a checkpoint of this trainer"):
        export_checkpoint(tmp_path / "foreign.pt")
    with pytest.raises(UserError, match="checkpoint not found"):
        export_checkpoint(tmp_path / "missing.pt")
