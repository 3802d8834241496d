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
