"""Knowledge distillation (Hinton et al. 2015, "Distilling the Knowledge in a Neural Network"):
the 1-bit student learns from a trained teacher's softened class probabilities as well as from
the labels. The usual teacher is the student's own full-precision twin.

Config (``train.distill``, null to train on the labels alone):

    distill: {teacher: runs/fmnist_wrn8_3_w1a2-fp/last.pt, temperature: 4.0, alpha: 0.9}

loss = alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * CE(student, y).
The T^2 keeps the soft term's gradient on the scale of the hard one's as T changes. The teacher
sees the same augmented batch as the student, in eval mode, without gradients.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from common.errors import UserError
from train.checkpoint import load_checkpoint, model_from_checkpoint


def validate(cfg: dict) -> None:
    """Config-level checks (no file access: a config may name a teacher that is trained later)."""
    d = cfg["train"].get("distill")
    if d is None:
        return
    if not isinstance(d, dict) or set(d) - {"teacher", "temperature", "alpha"} or "teacher" not in d:
        raise UserError("train.distill must be null or {teacher: <checkpoint>, temperature: T, alpha: a}")
    if float(d.get("temperature", 4.0)) <= 0:
        raise UserError(f"train.distill.temperature must be > 0 (got {d['temperature']})")
    if not 0.0 <= float(d.get("alpha", 0.9)) <= 1.0:
        raise UserError(f"train.distill.alpha must be in [0, 1] (got {d['alpha']})")


class Distiller:
    """The teacher and the loss that mixes its soft targets with the labels."""

    def __init__(self, teacher: torch.nn.Module, temperature: float = 4.0, alpha: float = 0.9):
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.temperature, self.alpha = float(temperature), float(alpha)

    @classmethod
    def from_config(cls, cfg: dict, image_shape, num_classes: int, device) -> Distiller | None:
        d = cfg["train"].get("distill")
        if d is None:
            return None
        path = Path(d["teacher"])
        if not path.is_file():
            raise UserError(f"train.distill.teacher: checkpoint not found: {path} "
                            "(train the teacher first, e.g. `make train-fp`)")
        teacher = model_from_checkpoint(load_checkpoint(path))
        mc = teacher.cfg
        if (mc.in_channels, mc.num_classes) != (image_shape[0], num_classes):
            raise UserError(f"train.distill.teacher {path} takes {mc.in_channels} channels and predicts "
                            f"{mc.num_classes} classes; this data set has {image_shape[0]} and {num_classes}")
        return cls(teacher.to(device), d.get("temperature", 4.0), d.get("alpha", 0.9))

    def loss(self, student_logits: torch.Tensor, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            teacher_logits = self.teacher(x)
        t = self.temperature
        soft = F.kl_div(F.log_softmax(student_logits / t, dim=1), F.log_softmax(teacher_logits / t, dim=1),
                        reduction="batchmean", log_target=True)
        return self.alpha * t * t * soft + (1.0 - self.alpha) * F.cross_entropy(student_logits, y)
