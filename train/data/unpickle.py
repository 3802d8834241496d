"""Reading the pickled data sets (CIFAR's python batches, mnist.pkl.gz) without running code.

A pickle names the Python functions that rebuild its objects, and ``pickle.load`` calls whatever
it names: a data file from someone else could run a shell command. These formats hold only
dicts, lists, tuples, bytes, strings, numbers and numpy arrays; plain containers and scalars need
no name at all, a numpy array needs exactly the numpy names admitted here, and bytes written by
Python 3 in an old protocol need _codecs.encode (admitted for latin1 only). Any other name is
refused before anything is called.
"""

from __future__ import annotations

import importlib
import pickle

import numpy as np

from common.errors import UserError


def _latin1_bytes(text: str, encoding: str = "utf-8") -> bytes:
    """What Python 3 writes for a bytes object in a protocol 0-2 pickle: _codecs.encode(text,
    'latin1') (numpy's array headers and data included). Only that one encoding is admitted."""
    if encoding != "latin1" or not isinstance(text, str):
        raise RefusedGlobal(f"_codecs.encode with encoding {encoding!r}")
    return text.encode("latin1")


def _admitted() -> dict:
    # numpy 2 keeps these in numpy._core (numpy.core is a shim that warns when touched); a pickle
    # written under numpy 1 names numpy.core, one written under numpy 2 numpy._core: both are
    # the same functions.
    try:
        multiarray = importlib.import_module("numpy._core.multiarray")
    except ImportError:
        multiarray = importlib.import_module("numpy.core.multiarray")
    admitted = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                ("_codecs", "encode"): _latin1_bytes}
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        admitted[core, "_reconstruct"] = multiarray._reconstruct  # an array's header: class, shape, dtype
        admitted[core, "scalar"] = multiarray.scalar  # a numpy scalar, e.g. np.uint8(3)
    return admitted


ADMITTED = _admitted()


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names something outside ADMITTED."""


class DataUnpickler(pickle.Unpickler):
    """pickle.Unpickler that resolves only the numpy names in ADMITTED."""

    def find_class(self, module: str, name: str):
        try:
            return ADMITTED[module, name]
        except KeyError:
            raise RefusedGlobal(f"{module}.{name}") from None


def load_data_pickle(f, path) -> object:
    """The object pickled in the open binary file ``f``; one UserError line naming ``path`` when
    it asks for anything but plain data and numpy arrays."""
    try:
        # encoding="bytes": CIFAR's batches were written by Python 2; their str keys stay bytes
        return DataUnpickler(f, encoding="bytes").load()
    except RefusedGlobal as e:
        raise UserError(f"refused to read {path}: it asks for {e} while loading, which could run code; "
                        "a data set pickle holds only plain data and numpy arrays") from None
