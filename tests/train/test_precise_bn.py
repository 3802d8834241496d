import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from common.errors import UserError
from tests.train.test_export import HW, images, warmed_model
from train.checkpoint import load_checkpoint, model_from_checkpoint, save_checkpoint
from train.export import export_checkpoint
from train.precise_bn import main, precise_bn_checkpoint, reestimate_batchnorm


def bn_inputs(model: nn.Module, x: torch.Tensor) -> dict:
    """Every BatchNorm's input for one forward pass, as numpy: BNs normalise with batch statistics,
    quantizer scales stay fixed (the warmed model's would still be collecting in training mode)."""
    seen, hooks = {}, []
    model.eval()
    for name, m in model.named_modules():
        if isinstance(m, nn.BatchNorm2d):
            m.train()
            hooks.append(m.register_forward_pre_hook(
                lambda mod, inp, name=name: seen.__setitem__(name, inp[0].detach().double().numpy())))
    with torch.no_grad():
        model(x.float() / 255)
    for h in hooks:
        h.remove()
    return seen


def numpy_stats(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    flat = a.transpose(1, 0, 2, 3).reshape(a.shape[1], -1)
    return flat.mean(1), flat.var(1, ddof=1)


def test_one_batch_gives_the_exact_statistics_of_every_bn():
    model = warmed_model(act_bits=2, **HW)
    x, _ = images(24)
    ref = {n: numpy_stats(a) for n, a in bn_inputs(copy.deepcopy(model), x).items()}
    reestimate_batchnorm(model, x, batch_size=len(x))
    bns = dict(model.named_modules())
    assert len(ref) >= 5
    for name, (mean, var) in ref.items():
        assert np.allclose(bns[name].running_mean.double().numpy(), mean, rtol=1e-5, atol=1e-6), name
        assert np.allclose(bns[name].running_var.double().numpy(), var, rtol=1e-5, atol=1e-6), name


@pytest.mark.parametrize("batch_size", [6, 8])
def test_batches_average_to_the_population_mean(batch_size):
    """The first BN sees the same input whatever the other BNs hold: its new mean is the mean over
    all images and its variance the mean of the per-batch unbiased variances."""
    model = warmed_model(act_bits=2, **HW)
    x, _ = images(24)
    first = next(n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d))
    a = bn_inputs(copy.deepcopy(model), x)[first]
    var = np.mean([numpy_stats(a[i:i + batch_size])[1] for i in range(0, len(x), batch_size)], axis=0)
    reestimate_batchnorm(model, x, batch_size)
    bn = model.get_submodule(first)
    assert np.allclose(bn.running_mean.double().numpy(), numpy_stats(a)[0], rtol=1e-5, atol=1e-6)
    assert np.allclose(bn.running_var.double().numpy(), var, rtol=1e-5, atol=1e-6)
    assert bn.momentum == 0.1 and not model.training  # restored for later training, left in eval mode


def test_only_batchnorm_statistics_change():
    model = warmed_model(act_bits=2, **HW)
    before = copy.deepcopy(model.state_dict())
    reestimate_batchnorm(model, images(24)[0], 8)
    changed = {k for k, v in model.state_dict().items() if not torch.equal(v, before[k])}
    assert changed and all(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in changed)


def test_checkpoint_report_and_export(tmp_path):
    from train.data import Dataset

    model = warmed_model(act_bits=2, **HW)
    save_checkpoint(tmp_path / "last.pt", model, {"data": {"dataset": "fashion_mnist"}, "seed": 0},
                    optimizer={"state": 1}, epoch=3)
    x, y = images(20)
    tx, ty = images(10, seed=3)
    ds = Dataset("fashion_mnist", x, y, tx, ty, 10, "fixture")
    out = tmp_path / "last_precise_bn.pt"
    report = precise_bn_checkpoint(tmp_path / "last.pt", out, batch_size=5, ds=ds, progress=False)

    ref = reestimate_batchnorm(copy.deepcopy(model), x, 5)
    ckpt = load_checkpoint(out)
    got = model_from_checkpoint(ckpt)
    for k, v in ref.state_dict().items():
        assert torch.equal(got.state_dict()[k], v), k
    with torch.no_grad():  # the report's accuracies, recounted from the two models' outputs
        acc = [(m(tx.float() / 255).argmax(1) == ty).float().mean().item() for m in (model.eval(), ref)]
    assert report["before"]["test_top1"] == pytest.approx(acc[0]) and report["after"]["test_top1"] == pytest.approx(acc[1])
    assert "optimizer" not in ckpt and ckpt["epoch"] == 3 and ckpt["precise_bn"]["images"] == 20
    assert report["keep"] == "precise" and report["chosen_on"].startswith("no validation split")
    assert report["device"] == "cpu"  # the checkpoint's "auto" on this machine
    assert json.loads(out.with_suffix(".json").read_text())["batch_size"] == 5
    assert "Precise BatchNorm" in out.with_suffix(".md").read_text()
    assert export_checkpoint(out, tmp_path / "model.onnx", images=5, ds=ds)["passed"]


def test_the_choice_is_made_on_the_validation_split(tmp_path):
    """With data.val_images the report keeps the statistics that score better on the held-out
    training images; the test set is scored for the report only."""
    from train.data import Dataset

    model = warmed_model(act_bits=2, **HW)
    save_checkpoint(tmp_path / "last.pt", model, {"data": {"dataset": "fashion_mnist"}, "seed": 0}, epoch=1)
    x, y = images(20)
    tx, ty = images(10, seed=3)
    vx, vy = images(12, seed=5)
    ds = Dataset("fashion_mnist", x, y, tx, ty, 10, "fixture", val_x=vx, val_y=vy)
    report = precise_bn_checkpoint(tmp_path / "last.pt", tmp_path / "p.pt", batch_size=5, ds=ds, progress=False)
    ref = reestimate_batchnorm(copy.deepcopy(model), x, 5)
    with torch.no_grad():
        val = [(m(vx.float() / 255).argmax(1) == vy).float().mean().item() for m in (model.eval(), ref)]
    assert report["before"]["val_top1"] == pytest.approx(val[0]) and report["after"]["val_top1"] == pytest.approx(val[1])
    assert report["keep"] == ("precise" if val[1] >= val[0] else "as trained")
    assert report["chosen_on"] == "chosen on the validation split (data.val_images)"
    assert "validation top-1" in (tmp_path / "p.md").read_text()


def test_bad_inputs_give_one_line_errors(tmp_path, capsys):
    assert main([str(tmp_path / "missing.pt")]) == 2
    assert capsys.readouterr().err.strip() == f"error: checkpoint not found: {tmp_path / 'missing.pt'}"
    assert main([str(tmp_path / "missing.pt"), "--batch-size", "0"]) == 2
    assert "--batch-size must be >= 1" in capsys.readouterr().err
    with pytest.raises(UserError, match="no BatchNorm"):
        reestimate_batchnorm(nn.Sequential(nn.Conv2d(1, 1, 1)), images(2)[0])


def test_an_unknown_device_is_one_line(tmp_path, capsys):
    save_checkpoint(tmp_path / "last.pt", warmed_model(act_bits=2, **HW), {"data": {"dataset": "fashion_mnist"}, "seed": 0})
    assert main([str(tmp_path / "last.pt"), "--device", "tpu7"]) == 2
    assert capsys.readouterr().err.strip() == "error: unknown device 'tpu7' (auto, cpu, cuda or cuda:N)"
