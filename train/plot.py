"""PNG plot of the training curves (loss and top-1 per epoch)."""

from __future__ import annotations

from pathlib import Path

from common.atomic import atomic_path


def plot_history(history: list[dict], path: str | Path, title: str,
                 train_loss: str = "cross-entropy") -> None:
    """``train_loss`` names the loss trained on (a distilled run's is not the test's cross-entropy)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ep = [h["epoch"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(ep, [h["train_loss"] for h in history], label=f"train ({train_loss})")
    ax_loss.plot(ep, [h["test_loss"] for h in history], label="test (cross-entropy)")
    ax_loss.set_xlabel("epoch"), ax_loss.set_ylabel("loss"), ax_loss.legend()
    ax_acc.plot(ep, [100 * h["train_top1"] for h in history], label="train")
    ax_acc.plot(ep, [100 * h["test_top1"] for h in history], label="test")
    if any("val_top1" in h for h in history):
        ax_acc.plot(ep, [100 * h.get("val_top1", float("nan")) for h in history], label="val")
    ax_acc.set_xlabel("epoch"), ax_acc.set_ylabel("top-1 (%)"), ax_acc.legend()
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
