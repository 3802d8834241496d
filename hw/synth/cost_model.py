"""A resource model of this project's bipolar MVAU (hw/rtl/mvu_bipolar.sv), fitted to yosys.

Why: the folding search needs a layer's cost for every PE / SIMD it tries, thousands of times,
while one yosys run of a layer takes 10-70 s. FINN's estimate is of FINN's HLS MVAU, not of this
RTL: on the default model it puts a 576-lane layer with its weights in block RAM at 6,196 LUT
where yosys counts 2,962. The model here is linear in a few counts of what the RTL instantiates
(``features``), its coefficients fitted to yosys runs of real layers by ``bench/fit_cost_model.py``
and stored as data in ``mvau_bipolar_cost.yaml`` beside this file, with the fit's error per layer.

Width converters (this project's StreamWidthConverter_rtl, hw/rtl/stream_width_convert.sv) have
a model of their own (``dwc_features``, coefficients in ``stream_width_convert_cost.yaml`` fitted
by ``bench/fit_converter_cost.py``): FINN's estimate is of its own converter, and the folding
search must see what a folding's converters cost in the RTL that is built. The FIFOs between
layers (``fifo_features``, ``stream_fifo_cost.yaml``) are costed per stream by their width alone,
their depths being found later, by simulation. The max pool (MaxPool_rtl, hw/rtl/max_pool.sv,
``pool_features``, ``max_pool_cost.yaml`` fitted by ``bench/fit_pool_cost.py``) is costed by
its lanes' bits: FINN estimates its Pool at 0 LUT.

Memories: the weight ROM is PE*SIMD bits wide and (MW/SIMD)*(MH/PE) words deep. In block RAM it
costs no LUT (its BRAM count is FINN's MVAU estimate, which the RTL's ROM matches); in LUTs it
costs a number of LUTs per stored bit that grows with the depth (``rom_luts_per_bit``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from common.yamlfile import read_yaml

COEFFICIENTS_FILE = Path(__file__).with_name("mvau_bipolar_cost.yaml")
DWC_COEFFICIENTS_FILE = Path(__file__).with_name("stream_width_convert_cost.yaml")
FIFO_COEFFICIENTS_FILE = Path(__file__).with_name("stream_fifo_cost.yaml")
POOL_COEFFICIENTS_FILE = Path(__file__).with_name("max_pool_cost.yaml")
FEATURES = ("const", "lanes", "accumulators", "comparators", "rom", "rom_shallow", "replay")
SHALLOW_ROM_WORDS = 8  # a weight ROM this shallow in LUTs: each bit a function of <= 3 address bits
DWC_FEATURES = ("const", "mux", "slots")
FIFO_FEATURES = ("const", "bits")
POOL_FEATURES = ("const", "bits", "wide_bits")


@dataclass(frozen=True)
class MvauShape:
    """What the cost of one mvu_bipolar depends on (the RTL's parameters)."""
    mw: int
    mh: int
    pe: int
    simd: int
    in_bits: int
    in_signed: bool
    out_bits: int
    no_act: bool
    nsteps: int = 1  # thresholds per channel (no_act = False)

    @property
    def depth(self) -> int:
        return (self.mw // self.simd) * (self.mh // self.pe)

    @property
    def width(self) -> int:
        return self.pe * self.simd

    @property
    def acc_bits(self) -> int:
        """mvu_bipolar's ACC_W: $clog2(MW * max|x| + 1) + 1."""
        mag = (1 << (self.in_bits - 1)) if self.in_signed else (1 << self.in_bits) - 1
        return (self.mw * mag).bit_length() + 1


def shape_of(model, node) -> MvauShape:
    """The MvauShape of an MVAU node (FINN's MVAU_hls or this project's MVAUBipolar_rtl)."""
    from qonnx.core.datatype import DataType
    from qonnx.custom_op.registry import getCustomOp

    a = getCustomOp(node).get_nodeattr
    idt, odt = DataType[a("inputDataType")], DataType[a("outputDataType")]
    no_act = bool(a("noActivation"))
    thr = None if no_act or len(node.input) < 3 else model.get_initializer(node.input[2])
    return MvauShape(mw=a("MW"), mh=a("MH"), pe=a("PE"), simd=a("SIMD"), in_bits=idt.bitwidth(),
                     in_signed=idt.signed(), out_bits=odt.bitwidth(), no_act=no_act,
                     nsteps=1 if thr is None else int(thr.shape[1]))


def rom_luts_per_bit(depth: int) -> int:
    """LUTs per ROM bit in LUTs: one LUT6 per 64 words, and the multiplexers that join them."""
    blocks = math.ceil(depth / 64)
    return blocks + (blocks - 1)


def features(s: MvauShape, style: str) -> dict[str, float]:
    """The counts the model is linear in. ``style``: "block" or "distributed" weight memory.
    A shallow ROM in LUTs is a feature of its own: its bits merge into the LUTs of the sums they
    feed (yosys: zcu104's 24 x 216-lane layer with a 4-word ROM, 20,090 LUT where one LUT per ROM
    bit would add 5,184)."""
    in_luts = style != "block"
    shallow = s.depth <= SHALLOW_ROM_WORDS
    return {
        "const": 1.0,
        # input bits, each kept or inverted by its weight, into the PE adder trees
        "lanes": float(s.pe * s.simd * s.in_bits),
        # the PE accumulators and the output FIFO
        "accumulators": float(s.pe * s.acc_bits + s.pe * s.out_bits),
        "comparators": 0.0 if s.no_act else float(s.pe * s.nsteps * s.acc_bits),
        "rom": float(s.width * rom_luts_per_bit(s.depth)) if in_luts and not shallow else 0.0,
        "rom_shallow": float(s.width) if in_luts and shallow else 0.0,
        # the input fold buffer replayed for the neuron folds after the first (LUT RAM of SF words
        # and the stream / buffer multiplexer in front of the sums), none when NF = 1
        "replay": float(s.simd * s.in_bits * math.ceil(s.mw // s.simd / 32)) if s.mh > s.pe else 0.0,
    }


def dwc_features(in_bits: int, out_bits: int) -> dict[str, float]:
    """The counts a stream_width_convert's LUTs are linear in. It widens to L = lcm(in, out) bits
    (one write enable per slot of ``in_bits``; the data go straight into the flip-flops) and
    narrows L to ``out_bits`` (a K-way multiplexer per output bit, K = L / out: a tree of
    four-way LUT6 multiplexers, one LUT for every three inputs beyond the first). A whole ratio
    has one of the two stages."""
    lcm = math.lcm(in_bits, out_bits)
    k_out, k_in = lcm // out_bits, lcm // in_bits
    return {"const": 1.0,
            "mux": float(out_bits * math.ceil((k_out - 1) / 3)) if k_out > 1 else 0.0,
            "slots": float(k_in) if k_in > 1 else 0.0}


@lru_cache(maxsize=None)
def _coefficients(path: str, section: str, names: tuple[str, ...]) -> dict[str, float]:
    """One model's coefficients: ``names`` under ``section`` of the YAML file at ``path``."""
    data = read_yaml(Path(path))
    return {name: float(data[section][name]) for name in names}


def _linear(coef: dict[str, float], feats: dict[str, float]) -> float:
    return sum(coef[k] * v for k, v in feats.items())


def coefficients(path: str = str(COEFFICIENTS_FILE)) -> dict[str, float]:
    return _coefficients(path, "lut", FEATURES)


def dwc_coefficients(path: str = str(DWC_COEFFICIENTS_FILE)) -> dict[str, float]:
    return _coefficients(path, "dwc_lut", DWC_FEATURES)


def predict_dwc_luts(in_bits: int, out_bits: int) -> float:
    """The model's LUT count for a stream_width_convert from ``in_bits`` to ``out_bits`` a beat."""
    return _linear(dwc_coefficients(), dwc_features(in_bits, out_bits))


def fifo_features(width: int) -> dict[str, float]:
    """The counts a stream FIFO's LUTs are linear in, before its depth is known (FIFOs are sized
    by simulation after the folding): a constant (counters, handshake) and its TDATA bits."""
    return {"const": 1.0, "bits": float(width)}


def fifo_coefficients(path: str = str(FIFO_COEFFICIENTS_FILE)) -> dict[str, float]:
    return _coefficients(path, "fifo_lut", FIFO_FEATURES)


def predict_fifo_luts(width: int) -> float:
    """The model's LUT count for the sized FIFO on a stream of ``width`` TDATA bits: the mean over
    the FIFOs of the builds it was fitted to, shallow and deep ones alike."""
    return _linear(fifo_coefficients(), fifo_features(width))


def pool_features(pe: int, in_bits: int) -> dict[str, float]:
    """The counts a max_pool's LUTs are linear in: a constant (window counter, handshake), the
    bits of a beat (each selected between the input and the running maximum, into two registers)
    and those bits again where the elements are wider than 2 bits: up to 2 bits a lane's
    comparison and select fit one LUT6 per bit (x, m and the window's first beat: at most 5
    inputs); wider, the comparison takes LUTs of its own in front of the selects."""
    bits = float(pe * in_bits)
    return {"const": 1.0, "bits": bits, "wide_bits": bits if in_bits > 2 else 0.0}


def pool_coefficients(path: str = str(POOL_COEFFICIENTS_FILE)) -> dict[str, float]:
    return _coefficients(path, "pool_lut", POOL_FEATURES)


def predict_pool_luts(pe: int, in_bits: int) -> float:
    """The model's LUT count for a max_pool of ``pe`` lanes of ``in_bits`` bits (any window)."""
    return _linear(pool_coefficients(), pool_features(pe, in_bits))


@lru_cache(maxsize=None)
def finn_lut_scales(path: str = str(COEFFICIENTS_FILE)) -> dict[str, float]:
    """yosys / FINN LUT ratio per op type (without _hls / _rtl) for the layers FINN estimates."""
    return {k: float(v) for k, v in (read_yaml(Path(path)).get("finn_lut_scale") or {}).items()}


def scaled_finn_luts(op_type: str, finn_luts: float) -> float:
    """FINN's LUT estimate of a layer this model does not cover, scaled to what yosys counts."""
    base = op_type.removesuffix("_rtl").removesuffix("_hls")
    return finn_luts * finn_lut_scales().get(base, 1.0)


def predict_luts(s: MvauShape, style: str) -> float:
    """The model's LUT count for one layer."""
    return _linear(coefficients(), features(s, style))
