"""Training on two processes (torchrun, DDP over gloo on this CPU): the loss falls, rank 0 alone
writes the run, and checkpoints go on from 2 processes to 1 and from 1 to 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.fixtures import pattern_images, write_idx_set
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.distributed import Processes

REPO = Path(__file__).resolve().parents[2]
TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]


def tiny_run(data: Path) -> list[str]:
    return ["--set", f"data.root={data}", "model.width=1", "train.batch_size=32", "train.epochs=4",
            "train.schedule={name: constant}", "train.lr=0.05", "train.eval_batch_size=64", "data.augment.cutout=4",
            "export.enabled=false", "--no-progress"]


def run(launcher: list[str], args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([*launcher, "-m", "train", *args], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return proc


def epochs(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow  # about a minute: three torchrun launches of two processes
def test_two_gloo_processes_train_and_resume_either_way(tmp_path):
    data = tmp_path / "data"
    write_idx_set(data / "fashion-mnist", pattern_images(192, 12, 10, 0), pattern_images(64, 12, 10, 1))
    args = tiny_run(data)

    two = tmp_path / "two"
    proc = run(TORCHRUN, [*args, "--run-dir", str(two)])
    assert proc.stdout.count("[train] done") == 1  # rank 0 speaks, once
    assert "2 processes (gloo; BatchNorm over each process's share" in proc.stdout
    rows = epochs(two)
    assert [r["epoch"] for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["train_loss"] < rows[0]["train_loss"]
    assert json.loads((two / "final.json").read_text())["processes"] == 2
    ckpt = load_checkpoint(two / "last.pt")
    assert not any(k.startswith("module.") for k in ckpt["model"])  # the plain model, not DDP's wrapper
    model = model_from_checkpoint(ckpt)
    assert model(torch.zeros(2, 1, 12, 12)).shape == (2, 10)

    run([sys.executable], [*args, "--run-dir", str(two), "--resume", "--extend-to", "5"])  # 2 -> 1 process
    assert [r["epoch"] for r in epochs(two)] == [1, 2, 3, 4, 5]
    assert json.loads((two / "final.json").read_text())["processes"] == 1

    one = tmp_path / "one"
    run([sys.executable], [*args[:-1], "train.epochs=1", "--no-progress", "--run-dir", str(one)])
    run(TORCHRUN, [*args, "--run-dir", str(one), "--resume", "--extend-to", "2"])  # 1 -> 2 processes
    assert [r["epoch"] for r in epochs(one)] == [1, 2]
    assert json.loads((one / "final.json").read_text())["processes"] == 2


def test_one_process_shares_everything():
    p = Processes()
    x = torch.arange(10)
    assert p.main and p.world == 1 and torch.equal(p.share(x), x) and p.total(3.0, 4) == [3.0, 4]


def test_shares_of_a_batch_cover_it_once():
    x = torch.arange(7)
    shares = [Processes(rank=r, world=3, backend="gloo").share(x) for r in range(3)]
    assert sorted(torch.cat(shares).tolist()) == list(range(7))
    assert [len(s) for s in shares] == [3, 2, 2]
