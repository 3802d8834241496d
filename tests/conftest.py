import os

import pytest
import torch

# The suite runs on 2 cores; keep torch from oversubscribing them.
torch.set_num_threads(int(os.environ.get("WRN_TEST_THREADS", "2")))


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config, items):
    skips = {}
    if not config.getoption("--run-slow"):
        skips["slow"] = pytest.mark.skip(reason="slow test: run with `make test-slow` (pytest --run-slow)")
    if not torch.cuda.is_available():
        skips["gpu"] = pytest.mark.skip(reason="needs a CUDA device; none present")
    if not os.environ.get("XILINX_VIVADO"):
        skips["vivado"] = pytest.mark.skip(reason="needs Xilinx Vivado/Vitis (XILINX_VIVADO unset)")
    for item in items:
        for marker, skip in skips.items():
            if marker in item.keywords:
                item.add_marker(skip)
