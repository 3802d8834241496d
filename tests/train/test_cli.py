import subprocess
import sys

import pytest

from train.cli import main


@pytest.mark.parametrize("argv,needle", [
    (["--config", "nope.yaml"], "config file not found: nope.yaml"),
    (["--set", "train.epocs=3"], "unknown config key 'train.epocs'"),
    (["--set", "data.dataset=imagenet", "--run-dir", "RUN"], "unknown data set 'imagenet'"),
])
def test_bad_input_is_one_line_on_stderr_with_status_2(argv, needle, capsys, tmp_path):
    argv = [a.replace("RUN", str(tmp_path / "run")) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and needle in err and "\n" not in err


def test_module_entry_points_show_help():
    for mod in ("train", "train.export"):
        out = subprocess.run([sys.executable, "-m", mod, "--help"], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0 and "usage:" in out.stdout
