"""Verilator simulation of AXI-stream designs, driven from Python with numpy batches."""

from hw.sim.axis import pack_words, unpack_words
from hw.sim.verilator import SimResult, Stall, Stream, VerilatedDesign, verilator_available

__all__ = [
    "SimResult",
    "Stall",
    "Stream",
    "VerilatedDesign",
    "pack_words",
    "unpack_words",
    "verilator_available",
]
