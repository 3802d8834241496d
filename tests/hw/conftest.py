"""Fixtures of the cppsim tests (tests/hw/test_cppsim.py, tests/flows/test_verify_cppsim.py)."""

from __future__ import annotations

import os

import pytest

from tests.hw.custom_op.stream_layer_util import finn  # noqa: F401  (a fixture the ones below use)


@pytest.fixture(scope="session")
def cppsim(finn):
    """Skips (with FINN's dependency folder in the reason) where finn-hlslib, the headers or g++
    is missing."""
    from hw.cppsim import missing_cppsim_tools

    why = missing_cppsim_tools()
    if why:
        pytest.skip(why)


@pytest.fixture
def finn_deps_at(finn, monkeypatch):
    """Point FINN's settings at another FINN_DEPS for one test, then restore them."""
    from finn.util import settings

    saved = settings._SETTINGS
    keep = {k: os.environ.get(k) for k in ("FINN_DEPS", "FINN_DEPS_DEFINITIONS", "FINN_BUILD_DIR",
                                            "NUM_DEFAULT_WORKERS")}

    def point(path):
        os.environ["FINN_DEPS"] = str(path)
        settings._SETTINGS = None
        settings.initialize_dummy_settings()

    yield point
    settings._SETTINGS = saved
    for k, v in keep.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
