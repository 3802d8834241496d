"""BWNH (train.bwnh) against independent references: brute force, numerical minimisation,
and the layer's own convolution on real activations."""

import copy
import itertools
import json

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from scipy.optimize import minimize_scalar

from common.errors import UserError
from tests.fixtures import pattern_images, write_idx_set
from train.bwnh.cli import main as bwnh_main
from train.bwnh.convert import bwnh_from_checkpoint, load_binary_init
from train.bwnh.hashing import hash_layer, optimal_scale
from train.bwnh.layerwise import binarize
from train.checkpoint import save_checkpoint
from train.config import load_config
from train.data import datasets, load_dataset
from train.models import build_model


def problem(rng, fan_in, channels=3):
    """Inputs X (fan_in x N) with unequal, correlated dimensions, so S is far from identity."""
    n = int(rng.integers(fan_in, 3 * fan_in + 1))
    X = rng.normal(size=(fan_in, fan_in)) @ rng.normal(size=(fan_in, n)) + rng.normal(size=(fan_in, 1))
    return X, rng.normal(size=(fan_in, channels))


def loss_of(X, w, b, a):
    """||X^T w - a X^T b||^2 computed from X itself (not from S = X X^T as the solver does)."""
    return float(np.sum((X.T @ w - a * (X.T @ b)) ** 2))


def best_scale_lstsq(X, w, b):
    """The optimal a for a given b, as numpy's least-squares solution."""
    return float(np.linalg.lstsq((X.T @ b)[:, None], X.T @ w, rcond=None)[0][0])


def brute_force(X, w):
    """min over all 2^fan_in sign vectors b (each with its least-squares a) of the loss."""
    return min(loss_of(X, w, b, best_scale_lstsq(X, w, b))
               for b in map(np.array, itertools.product([-1.0, 1.0], repeat=len(w))))


@pytest.mark.parametrize("inputs, min_optimal", [("iid", 0.8), ("correlated", 0.5)])
def test_reaches_the_brute_force_optimum_on_most_small_problems_and_never_loses_to_the_baseline(inputs, min_optimal):
    """DCC is a local search: over four seeds it found the exact optimum for 88-91% of the
    channels with i.i.d. Gaussian inputs and 57-69% with strongly correlated ones (image patches
    are), closing 83-95% of sign(w) * mean|w|'s excess over the optimum; never worse than it."""
    rng = np.random.default_rng(0)
    optimal = total = 0
    gap_closed = []
    for _ in range(100):
        fan_in = int(rng.integers(3, 11))
        if inputs == "iid":
            X, W = rng.normal(size=(fan_in, 3 * fan_in)), rng.normal(size=(fan_in, 3))
        else:
            X, W = problem(rng, fan_in)
        res = hash_layer(W, X @ X.T)
        assert res.converged
        assert set(np.unique(res.B)) <= {-1.0, 1.0} and (res.a >= 0).all()
        for j in range(W.shape[1]):
            w, b, a = W[:, j], res.B[:, j], res.a[j]
            got, best = loss_of(X, w, b, a), brute_force(X, w)
            baseline = loss_of(X, w, np.where(w >= 0, 1.0, -1.0), np.abs(w).mean())
            assert got >= best * (1 - 1e-9)  # no solution beats the brute-force optimum
            assert got <= baseline * (1 + 1e-9)
            optimal += got <= best * (1 + 1e-9)
            total += 1
            if baseline > best * (1 + 1e-9):
                gap_closed.append((baseline - got) / (baseline - best))
    assert optimal / total >= min_optimal, f"optimal on {optimal}/{total}"
    assert np.mean(gap_closed) >= 0.8  # of the baseline's excess over the optimum, on average


def test_closed_form_scale_equals_numerical_minimisation():
    rng = np.random.default_rng(1)
    X, W = problem(rng, 8, channels=5)
    B = np.where(rng.normal(size=W.shape) >= 0, 1.0, -1.0)
    a = optimal_scale(W, X @ X.T, B)
    for j in range(W.shape[1]):
        num = minimize_scalar(lambda s: loss_of(X, W[:, j], B[:, j], s), tol=1e-12).x
        assert a[j] == pytest.approx(num, rel=1e-6, abs=1e-9)


def test_loss_never_increases_across_iterations():
    rng = np.random.default_rng(2)
    X, W = problem(rng, 40, channels=6)
    S = X @ X.T
    # the state after k alternations, k = 0 (sign(W) with its best scales), 1, 2, ...
    losses = [[loss_of(X, W[:, j], r.B[:, j], r.a[j]) for j in range(W.shape[1])]
              for r in (hash_layer(W, S, max_iters=k) for k in range(8))]
    losses = np.array(losses)
    assert (np.diff(losses, axis=0) <= 1e-9 * losses[:-1]).all()
    assert losses[-1].sum() < losses[0].sum()  # and the alternation does improve on the start


def test_result_is_a_fixed_point_no_single_bit_flip_helps():
    rng = np.random.default_rng(3)
    X, W = problem(rng, 20, channels=4)
    res = hash_layer(W, X @ X.T)
    assert res.converged
    for j in range(W.shape[1]):
        w, b, a = W[:, j], res.B[:, j], res.a[j]
        assert a == pytest.approx(best_scale_lstsq(X, w, b), rel=1e-9)
        here = loss_of(X, w, b, a)
        for i in range(len(b)):
            flipped = b.copy()
            flipped[i] = -flipped[i]
            assert loss_of(X, w, flipped, a) >= here * (1 - 1e-12)


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="fan_in"):
        hash_layer(np.ones((4, 2)), np.eye(3))


# ---- a trained layer of a real network -------------------------------------------------------

@pytest.fixture(scope="module")
def fashion():
    """Fashion-MNIST's training images and labels, 2x2-averaged to 14x14 to keep the tests fast."""
    try:
        ds = load_dataset({"dataset": "fashion_mnist"})
    except UserError as e:
        pytest.skip(f"Fashion-MNIST not installed: {e}")
    return F.avg_pool2d(ds.train_x.float(), 2).round().to(torch.uint8), ds.train_y


@pytest.fixture(scope="module")
def trained_fp(fashion):
    """A full-precision WRN-8-1 trained for 60 steps of 32 Fashion-MNIST images."""
    x, y = fashion
    torch.manual_seed(0)
    model = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, binary_weights=False,
                             shortcut="conv")).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        idx = torch.randint(0, len(y), (32,), generator=gen)
        loss = F.cross_entropy(model(x[idx].float() / 255), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


def conv_inputs(model, images):
    """Every conv's input on ``images``, captured from the model's own forward pass."""
    seen = {}
    hooks = [m.register_forward_pre_hook(lambda m, i, n=n: seen.setdefault(n, i[0].detach()))
             for n, m in model.named_modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model.eval()(images.float() / 255)
    for h in hooks:
        h.remove()
    return seen


def per_channel_error(conv, x, weight):
    """||conv(x, W) - conv(x, weight)||^2 per output channel, by torch's own convolution."""
    d = (F.conv2d(x.double(), conv.weight.double(), None, conv.stride, conv.padding)
         - F.conv2d(x.double(), weight.double(), None, conv.stride, conv.padding))
    return (d ** 2).sum(dim=(0, 2, 3)).detach().numpy()


def test_bwnh_beats_sign_mean_on_every_channel_of_a_trained_layer(trained_fp, fashion):
    images = fashion[0][:64]
    results = binarize(copy.deepcopy(trained_fp), images, inputs="full_precision")
    inputs = conv_inputs(trained_fp, images)
    for r in results:
        conv = trained_fp.get_submodule(r.name)
        w = conv.weight.detach()
        baseline = torch.sign(w) * w.abs().mean(dim=(1, 2, 3), keepdim=True)
        bwnh = torch.from_numpy(r.B.T.copy()).reshape(w.shape) * torch.from_numpy(r.a)[:, None, None, None]
        err_bwnh = per_channel_error(conv, inputs[r.name], bwnh)
        err_base = per_channel_error(conv, inputs[r.name], baseline)
        assert (err_bwnh < err_base).all(), r.name
        np.testing.assert_allclose(r.loss_bwnh, err_bwnh, rtol=1e-6)  # the solver's own figure agrees


def test_layerwise_inputs_come_from_the_binarized_layers_below(trained_fp, fashion):
    """Each layer's reported error is its error on the inputs of the fully binarized network,
    whose layers below it are binarized; the float network's inputs would give other figures."""
    images = fashion[0][:32]
    model = copy.deepcopy(trained_fp)
    results = binarize(model, images)
    fp_inputs, bin_inputs = conv_inputs(trained_fp, images), conv_inputs(model, images)
    for r in results:
        conv = trained_fp.get_submodule(r.name)
        got = per_channel_error(conv, bin_inputs[r.name], model.get_submodule(r.name).weight)
        np.testing.assert_allclose(r.loss_bwnh, got, rtol=1e-6)
    deep = results[-1]
    fp_err = per_channel_error(trained_fp.get_submodule(deep.name), fp_inputs[deep.name],
                               model.get_submodule(deep.name).weight)
    assert not np.allclose(deep.loss_bwnh, fp_err, rtol=1e-3)


# ---- checkpoint and command line ---------------------------------------------------------------

def small_checkpoint(path, binary: bool):
    cfg = load_config(overrides=["model.width=1"], full_precision=not binary)
    model = build_model({**cfg["model"], "in_channels": 1, "num_classes": 10})
    save_checkpoint(path, model, cfg, epoch=1, history=[], best=None)
    return path


def test_checkpoint_gives_int8_bits_scales_and_a_state_dict_keyed_like_the_binary_wrn(tmp_path):
    ckpt = small_checkpoint(tmp_path / "fp.pt", binary=False)
    x, _ = pattern_images(16, 12, 10)
    init = bwnh_from_checkpoint(ckpt, torch.from_numpy(x[:, None]))
    binary = build_model(dict(depth=8, width=1, in_channels=1, num_classes=10, binary_weights=True,
                              shortcut="conv", act_bits=2, input_bits=8, head_bits=8))
    conv_keys = {k for k in binary.state_dict() if k.endswith(".weight") and k[:-7] in init.layers}
    assert conv_keys == {n + ".weight" for n in init.layers}
    for name, layer in init.layers.items():
        w = init.state_dict[name + ".weight"]
        assert layer["B"].dtype == torch.int8 and set(layer["B"].unique().tolist()) <= {-1, 1}
        assert torch.equal(torch.sign(w), layer["B"].float())
        assert torch.allclose(w.abs().mean(dim=(1, 2, 3)), layer["a"], rtol=1e-6)


def test_missing_or_binary_checkpoints_are_one_clear_error(tmp_path, capsys):
    x = torch.zeros(2, 1, 12, 12, dtype=torch.uint8)
    with pytest.raises(UserError, match="checkpoint not found"):
        bwnh_from_checkpoint(tmp_path / "nope.pt", x)
    with pytest.raises(UserError, match="1-bit-weight checkpoint"):
        bwnh_from_checkpoint(small_checkpoint(tmp_path / "bin.pt", binary=True), x)
    assert bwnh_main(["--from", str(tmp_path / "bin.pt"), "--run-dir", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "full-precision" in err[0]


@pytest.fixture
def fixture_data(tmp_path, monkeypatch):
    """12x12 Fashion-MNIST-format fixture images instead of the real data set."""
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIRS", [])
    write_idx_set(tmp_path / "data" / "fashion-mnist", pattern_images(64, 12, 10, 0), pattern_images(32, 12, 10, 1))
    return [f"data.root={tmp_path / 'data'}", "model.width=1"]


def test_cli_binarizes_reports_fine_tunes_and_exports(tmp_path, fixture_data):
    ckpt = small_checkpoint(tmp_path / "fp.pt", binary=False)
    run = tmp_path / "run"
    assert bwnh_main(["--from", str(ckpt), "--run-dir", str(run), "--images", "16", "--no-progress",
                      "--set", *fixture_data, "train.epochs=1", "train.batch_size=32", "train.lr=0.01",
                      "train.eval_batch_size=32", "export.check_images=8"]) == 0
    report = json.loads((run / "bwnh_report.json").read_text())
    assert len(report["layers"]) == 10 and report["calibration_images"] == 16
    for layer in report["layers"]:
        assert layer["rel_error_bwnh"] <= layer["rel_error_sign_mean"] + 1e-12
    assert "| `head_conv` |" in (run / "bwnh_report.md").read_text()
    assert set(torch.load(run / "bwnh_init.pt", weights_only=True)["layers"]) == {l["layer"] for l in report["layers"]}
    # the trainer's run: one epoch from BWNH's weights, then the QONNX export and its check
    assert report["finetune"]["epochs"] == 1 and report["finetune"]["export_passed"] is True
    # the default config's he_const has no per-channel scale: BWNH's A is kept by bwn_learned
    assert report["finetune"]["weight_quant"] == "bwn_learned"
    assert json.loads((run / "model_export_check.json").read_text())["passed"]
    assert "QONNX export check passed" in (run / "bwnh_report.md").read_text()
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))


@pytest.mark.parametrize("weight_quant", ["bwn_learned", "bwn", "he_const"])
def test_fine_tuning_starts_from_bwnh_bits_and_scales(tmp_path, weight_quant):
    ckpt = small_checkpoint(tmp_path / "fp.pt", binary=False)
    x, _ = pattern_images(16, 12, 10)
    init = bwnh_from_checkpoint(ckpt, torch.from_numpy(x[:, None]))
    cfg = load_config(overrides=["model.width=1", f"model.weight_quant={weight_quant}"])
    binary = build_model({**cfg["model"], "in_channels": 1, "num_classes": 10})
    load_binary_init(binary, init.state_dict)
    binary.train()
    binary(torch.from_numpy(x[:4, None]).float() / 255)  # a learned scale takes its value here
    for name, layer in init.layers.items():
        conv = binary.get_submodule(name)
        assert torch.equal(torch.sign(conv.weight.detach()), layer["B"].float())
        if weight_quant == "he_const":
            continue
        # the 1-bit conv's weights are BWNH's B * A, channel by channel
        expect = layer["B"].float() * layer["a"].view(-1, 1, 1, 1)
        assert torch.allclose(conv.quant_weight().value.detach(), expect, rtol=1e-5, atol=0)
    wider = build_model({**cfg["model"], "width": 2, "in_channels": 1, "num_classes": 10})
    with pytest.raises(UserError, match="do not fit"):
        load_binary_init(wider, init.state_dict)


@pytest.mark.parametrize("extra, message", [
    (["model.binary_weights=false"], "full-precision weights"),
    (["model.width=2"], "width 1 vs 2"),
])
def test_cli_refuses_a_config_that_cannot_be_fine_tuned_from_the_checkpoint(tmp_path, fixture_data, capsys, extra, message):
    ckpt = small_checkpoint(tmp_path / "fp.pt", binary=False)
    assert bwnh_main(["--from", str(ckpt), "--run-dir", str(tmp_path / "r"), "--set", *fixture_data, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]
    assert not (tmp_path / "r").exists()  # refused before any work
