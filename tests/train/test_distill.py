"""Knowledge distillation (train/distill.py) and fine-tuning from a checkpoint (train.init_from)."""

import numpy as np
import pytest
import torch

from common.errors import UserError
from tests.train.test_trainer import tiny_cfg  # noqa: F401  (fixture)
from train.checkpoint import init_from_checkpoint, load_checkpoint
from train.config import load_config, validate
from train.distill import Distiller
from train.models import build_model
from train.trainer import fit


class FixedLogits(torch.nn.Module):
    """A 'teacher' that answers every batch with the same logits (and has one parameter)."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        return self.logits * self.w


def numpy_kd_loss(s, t, y, temperature, alpha):
    def log_softmax(z):
        z = z - z.max(axis=1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=1, keepdims=True))

    log_ps, log_pt = log_softmax(s / temperature), log_softmax(t / temperature)
    kl = (np.exp(log_pt) * (log_pt - log_ps)).sum(axis=1).mean()
    ce = -log_softmax(s)[np.arange(len(y)), y].mean()
    return alpha * temperature ** 2 * kl + (1 - alpha) * ce


@pytest.mark.parametrize("temperature,alpha", [(1.0, 0.5), (4.0, 0.9), (2.5, 1.0), (3.0, 0.0)])
def test_loss_is_hintons_mix_of_soft_and_hard_targets(temperature, alpha):
    g = torch.Generator().manual_seed(0)
    s, t = torch.randn(16, 10, generator=g, dtype=torch.float64) * 3, torch.randn(16, 10, generator=g,
                                                                                   dtype=torch.float64) * 3
    y = torch.randint(0, 10, (16,), generator=g)
    got = Distiller(FixedLogits(t), temperature, alpha).loss(s, torch.zeros(16, 1, 4, 4), y).item()
    want = numpy_kd_loss(s.numpy(), t.numpy(), y.numpy(), temperature, alpha)
    assert got == pytest.approx(want, rel=1e-12)


def test_only_the_student_gets_gradients():
    teacher = FixedLogits(torch.randn(4, 10))
    s = torch.randn(4, 10, requires_grad=True)
    Distiller(teacher, 4.0, 0.9).loss(s, torch.zeros(4, 1, 4, 4), torch.tensor([0, 1, 2, 3])).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert teacher.w.grad is None and not teacher.w.requires_grad and not teacher.training


@pytest.mark.parametrize("distill,match", [
    ({"teacher": "t.pt", "temperature": 0}, "temperature must be > 0"),
    ({"teacher": "t.pt", "alpha": 1.5}, r"alpha must be in \[0, 1\]"),
    ({"teacher": "t.pt", "beta": 1}, "train.distill must be null or"),
    ({"temperature": 4}, "train.distill must be null or"),
])
def test_bad_distill_config_is_one_clear_error(distill, match):
    cfg = load_config()
    cfg["train"]["distill"] = distill
    with pytest.raises(UserError, match=match):
        validate(cfg)


def test_the_full_precision_twin_never_distills():
    cfg = load_config(overrides=["train.distill={teacher: t.pt}"], full_precision=True)
    assert cfg["train"]["distill"] is None


def small(cfg, epochs, **train):
    return {**cfg, "train": {**cfg["train"], "epochs": epochs, **train}}


def test_distilled_run_trains_and_resumes_exactly(tiny_cfg, tmp_path):  # noqa: F811
    fit(small({**tiny_cfg, "seed": 1}, 2), tmp_path / "teacher", progress=False)
    cfg = small(tiny_cfg, 3, distill={"teacher": str(tmp_path / "teacher" / "last.pt"), "temperature": 3.0,
                                      "alpha": 0.8})
    validate(cfg)
    fit(cfg, tmp_path / "straight", progress=False)
    fit(small(cfg, 1), tmp_path / "killed", progress=False)
    ckpt = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    ckpt["config"] = cfg
    torch.save(ckpt, tmp_path / "killed" / "last.pt")
    fit(cfg, tmp_path / "killed", resume=True, progress=False)
    a, b = (torch.load(tmp_path / r / "last.pt", weights_only=True) for r in ("straight", "killed"))
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    assert a["history"][-1]["train_loss"] < a["history"][0]["train_loss"]


def test_missing_or_mismatched_teacher_is_one_clear_error(tiny_cfg, tmp_path):  # noqa: F811
    with pytest.raises(UserError, match="train.distill.teacher: checkpoint not found: .*train the teacher first"):
        fit(small(tiny_cfg, 1, distill={"teacher": str(tmp_path / "nope.pt")}), tmp_path / "a", progress=False)
    other = {**tiny_cfg, "model": {**tiny_cfg["model"], "width": 1}}
    fit(small(other, 1), tmp_path / "t", progress=False)
    ckpt = torch.load(tmp_path / "t" / "last.pt", weights_only=True)
    ckpt["model_config"]["num_classes"] = 7
    ckpt["model"] = {k: (v[:7] if v.shape[:1] == (10,) else v) for k, v in ckpt["model"].items()}
    torch.save(ckpt, tmp_path / "t7.pt")
    with pytest.raises(UserError, match="predicts 7 classes; this data set has 1 and 10"):
        fit(small(tiny_cfg, 1, distill={"teacher": str(tmp_path / "t7.pt")}), tmp_path / "b", progress=False)


def test_init_from_starts_from_the_checkpoints_weights(tiny_cfg, tmp_path):  # noqa: F811
    fit(small(tiny_cfg, 2), tmp_path / "src", progress=False)
    src = load_checkpoint(tmp_path / "src" / "last.pt")
    model = build_model(src["model_config"])
    init_from_checkpoint(model, tmp_path / "src" / "last.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, src["model"][k]), k
    # through the trainer, with a learning rate of 0: the conv weights stay the checkpoint's
    fit(small(tiny_cfg, 1, init_from=str(tmp_path / "src" / "last.pt"), lr=0.0), tmp_path / "ft", progress=False)
    ft = load_checkpoint(tmp_path / "ft" / "last.pt")
    convs = [k for k, v in src["model"].items() if v.dim() == 4]  # latent conv weights
    assert convs and all(torch.equal(ft["model"][k], src["model"][k]) for k in convs)


def test_init_from_a_different_model_is_one_clear_error(tiny_cfg, tmp_path):  # noqa: F811
    fit(small(tiny_cfg, 1), tmp_path / "src", progress=False)
    wider = {**tiny_cfg, "model": {**tiny_cfg["model"], "width": 2}}
    with pytest.raises(UserError, match="train.init_from: .* holds a different model than this config's"):
        fit(small(wider, 1, init_from=str(tmp_path / "src" / "last.pt")), tmp_path / "ft", progress=False)
