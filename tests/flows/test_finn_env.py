import os

import pytest

from flows.finn_env import VendorToolMissing, import_finn


@pytest.mark.skipif(bool(os.environ.get("XILINX_VIVADO")), reason="checks the no-Vivado path")
def test_finn_build_steps_import_without_vivado(tmp_path):
    steps = import_finn(tmp_path / "finn")
    for name in ("step_qonnx_to_finn", "step_tidy_up", "step_streamline", "step_convert_to_hw",
                 "step_create_dataflow_partition", "step_specialize_layers", "step_hw_ipgen"):
        assert callable(getattr(steps, name))
    # FINN's rtlsim entry point is there, and says why it cannot run
    from finn.xsi import SimEngine

    with pytest.raises(VendorToolMissing, match="Vivado XSim"):
        SimEngine()
    assert os.environ["FINN_BUILD_DIR"] == str((tmp_path / "finn").resolve())


def test_hex_packing_without_bitstring():
    """finn-plus' array2hexstring contract (its docstring examples), packed with Python ints."""
    from qonnx.core.datatype import DataType

    from flows.finn_env import array_to_hexstring as pack

    assert pack([1, 1, 1, 0], DataType["BINARY"], 4) == "0xe"
    assert pack([1, 1, 1, 0], DataType["BINARY"], 8) == "0x0e"
    assert pack([1, 1, 0, 1], DataType["BINARY"], 4, reverse=True) == "0xb"
    assert pack([1, 1, 1, 0], DataType["BINARY"], 8, reverse=True) == "0x07"
    assert pack([-1, 1], DataType["BIPOLAR"], 4) == "0x1"
    assert pack([-1, 2], DataType["INT4"], 8, prefix="") == "f2"  # two's complement
    assert pack([1.0], DataType["FLOAT32"], 32) == "0x3f800000"
    with pytest.raises(Exception, match="greater than pad_to_nbits"):
        pack([1, 1, 1], DataType["INT4"], 8)
