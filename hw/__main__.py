"""`python -m hw verify ...` = `wrn1bit verify ...`: the whole accelerator of a QONNX model in
Verilator (--sim rtl) or cppsim (--sim cppsim). That check builds the accelerator and compares it
with the model, so it lives in flows/ (flows/verify_rtl.py); this is only its `python -m` form.
`python -m hw.synth` estimates resources with yosys."""

import sys

from flows.cli import main_verify_hw

if sys.argv[1:2] != ["verify"]:
    print("usage: python -m hw verify [options]   (= wrn1bit verify; --help for the options)", file=sys.stderr)
    sys.exit(2)
sys.exit(main_verify_hw(sys.argv[2:]))
