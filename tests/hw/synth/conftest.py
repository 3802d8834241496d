"""Fixtures of the synth tests that need FINN (test_staging.py, test_accelerator.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def finn(tmp_path_factory):
    # finn-plus set up alone: these tests use FINN's own layers, not this project's custom ops,
    # which the session-wide fixture of tests/hw/conftest.py also registers.
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn_build"))
