"""Folding (PE / SIMD per layer): the fastest design whose FINN estimates fit the board.

A dataflow accelerator's throughput is set by its slowest layer: clock / max(cycles per
frame). FINN's SetFolding unfolds every layer just enough to meet a target number of cycles
per frame; the smaller the target, the more parallel (and the larger) the design. This module
searches the target: a bisection in log space between the most folded design (PE = SIMD = 1
everywhere) and one cycle per frame, keeping the smallest target whose estimated resources
fit the board's budget times (1 - margin). Estimates are FINN's analytical per-node models
(node_res_estimation, get_exp_cycles); they leave out the FIFOs and width converters FINN
inserts later (step_set_fifo_depths), which is one reason for the margin.

Alternatively a user folding file (FINN's ApplyConfig JSON, e.g. the auto_folding_config.json
of an earlier build) is applied as given and checked against the same budget.

The resources that are checked: LUT, BRAM36 (FINN counts BRAM_18K; two make a BRAM36), DSP
and URAM. FINN has no flip-flop estimate, so FF is not checked.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from common.boards import DEFAULT_MARGIN, Board, DesignTooLarge, check_margin  # noqa: F401 (re-exported)
from common.errors import UserError

CHECKED = ("LUT", "BRAM36", "DSP", "URAM")  # resources FINN estimates per node
MOST_FOLDED_TARGET = 2 ** 62  # a cycles-per-frame target every layer meets at PE = SIMD = 1
SEARCH_PRECISION = 1.02  # stop when the fitting and non-fitting targets are within 2%
TABLE_ROWS = 15  # layers listed in an overflow table before "... and N more"


@dataclass
class LayerEstimate:
    name: str
    op_type: str
    pe: int | None
    simd: int | None
    cycles: int
    LUT: float
    BRAM36: float
    DSP: float
    URAM: float


@dataclass
class FoldingResult:
    model: ModelWrapper
    layers: list[LayerEstimate]
    source: str  # "search" or the folding file's path
    budget: dict[str, float]
    target_cycles: int | None = None
    trials: list[dict] = field(default_factory=list)  # the search, one entry per target tried

    @property
    def max_cycles(self) -> int:
        return max(layer.cycles for layer in self.layers)

    def totals(self) -> dict[str, float]:
        return resource_totals(self.layers)


# ----------------------------------------------------------------------------------------------
# Estimates
# ----------------------------------------------------------------------------------------------

def _attr_or_none(inst, name: str):
    try:
        return int(inst.get_nodeattr(name))
    except AttributeError:  # the op has no such folding attribute
        return None


def _res_estimation(model: ModelWrapper, inst, fpga_part: str) -> dict:
    """FINN's resource estimate of one node, for a Thresholding_rtl as FINN builds it.

    With one threshold set shared by every channel (thresholds of shape (1, steps): a per-tensor
    quantizer, e.g. an 8-bit residual stream after an MVAU) finn's Thresholding_rtl generates its
    RTL with C = PE channels, one set per PE, but its estimate stores NumChannels sets, e.g.
    10,710 LUT where yosys counts 235 for 192 channels x 255 thresholds. The estimate is taken with
    NumChannels = PE, which is what the RTL holds."""
    node = inst.onnx_node
    thr = model.get_initializer(node.input[1]) if node.op_type == "Thresholding_rtl" else None
    if thr is None or thr.shape[0] != 1:
        return inst.node_res_estimation(fpga_part)
    channels = inst.get_nodeattr("NumChannels")
    inst.set_nodeattr("NumChannels", inst.get_nodeattr("PE"))
    try:
        return inst.node_res_estimation(fpga_part)
    finally:
        inst.set_nodeattr("NumChannels", channels)


def layer_estimates(model: ModelWrapper, fpga_part: str) -> list[LayerEstimate]:
    """FINN's cycle and resource estimate of every hardware layer, in graph order."""
    from qonnx.custom_op.registry import getCustomOp

    layers = []
    for node in model.graph.node:
        inst = getCustomOp(node)
        res = _res_estimation(model, inst, fpga_part)
        layers.append(LayerEstimate(
            name=node.name, op_type=node.op_type, pe=_attr_or_none(inst, "PE"), simd=_attr_or_none(inst, "SIMD"),
            cycles=int(inst.get_exp_cycles()), LUT=float(res.get("LUT", 0)),
            BRAM36=float(res.get("BRAM_18K", 0)) / 2, DSP=float(res.get("DSP", 0)), URAM=float(res.get("URAM", 0))))
    return layers


def resource_totals(layers: list[LayerEstimate]) -> dict[str, float]:
    return {kind: sum(getattr(layer, kind) for layer in layers) for kind in CHECKED}


def budget_for(board: Board, margin: float) -> dict[str, float]:
    """The part of the board's resources a design may use: resources * (1 - margin)."""
    check_margin(margin)
    return {kind: board.resources.get(kind, 0) * (1 - margin) for kind in CHECKED}


def overflowing(totals: dict[str, float], budget: dict[str, float]) -> list[str]:
    """The resource kinds whose total exceeds the budget."""
    return [kind for kind in CHECKED if totals[kind] > budget[kind]]


def overflow_table(layers: list[LayerEstimate], budget: dict[str, float], kinds: list[str]) -> str:
    """Text table: the layers using most of the overflowing resources, the total and the budget."""
    key = lambda layer: tuple(getattr(layer, k) for k in kinds)  # noqa: E731
    ranked = sorted(layers, key=key, reverse=True)
    shown = [layer for layer in ranked if any(getattr(layer, k) > 0 for k in kinds)][:TABLE_ROWS]
    cols = ["LUT", "BRAM36"] + [k for k in kinds if k not in ("LUT", "BRAM36")]
    rows = [["layer", "op type", "PE", "SIMD"] + cols]
    for layer in shown:
        rows.append([layer.name, layer.op_type, str(layer.pe or "-"), str(layer.simd or "-")]
                    + [f"{getattr(layer, k):g}" for k in cols])
    left = len([layer for layer in ranked if any(getattr(layer, k) > 0 for k in kinds)]) - len(shown)
    if left > 0:
        rows.append([f"... and {left} more", "", "", ""] + [""] * len(cols))
    totals = resource_totals(layers)
    rows.append(["total", "", "", ""] + [f"{totals[k]:g}" + (" !" if k in kinds else "") for k in cols])
    rows.append(["budget", "", "", ""] + [f"{budget[k]:g}" for k in cols])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


# ----------------------------------------------------------------------------------------------
# Folding
# ----------------------------------------------------------------------------------------------

def set_folding(model: ModelWrapper, target_cycles: int, mvau_wwidth_max: int = 36) -> ModelWrapper:
    """A copy of the model folded by FINN's SetFolding for the target cycles per frame."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding

    folded = ModelWrapper(copy.deepcopy(model.model))
    return folded.transform(SetFolding(target_cycles, mvau_wwidth_max=mvau_wwidth_max), make_deepcopy=False)


def _trial(model, target, board, budget, mvau_wwidth_max):
    folded = set_folding(model, target, mvau_wwidth_max)
    layers = layer_estimates(folded, board.part)
    totals = resource_totals(layers)
    fits = not overflowing(totals, budget)
    record = {"target_cycles": None if target == MOST_FOLDED_TARGET else int(target),  # None: PE = SIMD = 1
              "max_cycles": max(la.cycles for la in layers), "fits": fits,
              **{k: totals[k] for k in CHECKED}}
    return folded, layers, record


def search_folding(model: ModelWrapper, board: Board, margin: float = DEFAULT_MARGIN,
                   mvau_wwidth_max: int = 36) -> FoldingResult:
    """The smallest cycles-per-frame target (highest throughput) whose design fits the budget.

    Assumes that resources grow as the target shrinks (more PE/SIMD), which holds for FINN's
    estimates up to small steps; the bisection runs in log space because targets span orders
    of magnitude. Raises DesignTooLarge when even the most folded design does not fit.
    """
    budget = budget_for(board, margin)
    folded, layers, first = _trial(model, MOST_FOLDED_TARGET, board, budget, mvau_wwidth_max)
    trials = [first]
    if not first["fits"]:
        kinds = overflowing(resource_totals(layers), budget)
        raise DesignTooLarge(
            f"the design does not fit {board.name} even fully folded (PE = SIMD = 1): "
            f"{', '.join(kinds)} over the budget ({100 * (1 - margin):.0f}% of the board):\n"
            + overflow_table(layers, budget, kinds))
    best = (folded, layers, first["max_cycles"])
    fit_target, miss_target = first["max_cycles"], 1  # fit_target fits; below miss_target is unknown
    folded, layers, rec = _trial(model, 1, board, budget, mvau_wwidth_max)
    trials.append(rec)
    if rec["fits"]:  # fully unfolded fits: nothing to search
        return FoldingResult(folded, layers, "search", budget, 1, trials)
    while fit_target / miss_target > SEARCH_PRECISION and fit_target - miss_target > 1:
        target = max(miss_target + 1, min(fit_target - 1, round(math.sqrt(fit_target * miss_target))))
        folded, layers, rec = _trial(model, target, board, budget, mvau_wwidth_max)
        trials.append(rec)
        if rec["fits"]:
            fit_target, best = target, (folded, layers, target)
        else:
            miss_target = target
    folded, layers, target = best
    return FoldingResult(folded, layers, "search", budget, target, trials)


def _check_folding_file(path: Path, model: ModelWrapper) -> dict:
    if not path.is_file():
        raise UserError(f"folding file not found: {path}")
    try:
        config = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise UserError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(config, dict):
        raise UserError(f"{path}: expected a JSON object of layer name -> attributes (FINN's folding config)")
    names = {n.name for n in model.graph.node}
    unknown = sorted(set(config) - names - {"Defaults"})
    if unknown:
        some = ", ".join(sorted(names)[:6])
        raise UserError(f"{path}: no layer named {', '.join(unknown)} in the design "
                        f"(its layers: {some}, ...; see folding_config.json of a build)")
    return config


# What PE and SIMD fold, per op: the first of these attributes the op has must be divisible.
PE_DIMS = ("MH", "NumChannels", "Labels", "Channels")
SIMD_DIMS = ("MW", "IFMChannels", "NumChannels")


def _first_attr(inst, names):
    for name in names:
        try:
            return name, int(inst.get_nodeattr(name))
        except AttributeError:
            continue
    return None, None


def _check_divisibility(model: ModelWrapper, path: Path) -> None:
    """PE / SIMD must divide the dimension they fold (FINN does not check it before codegen)."""
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        inst = getCustomOp(node)
        for attr, dims in (("PE", PE_DIMS), ("SIMD", SIMD_DIMS)):
            value = _attr_or_none(inst, attr)
            dim_name, dim = _first_attr(inst, dims)
            if value is None or dim is None:
                continue
            if value < 1 or dim % value:
                raise UserError(f"{path}: illegal folding for {node.name} ({node.op_type}): "
                                f"{attr}={value} does not divide {dim_name}={dim}")


def apply_folding_file(model: ModelWrapper, path: str | Path, board: Board,
                       margin: float = DEFAULT_MARGIN) -> FoldingResult:
    """Apply a FINN folding config (ApplyConfig JSON) as given; refuse it if it does not fit."""
    from finn.transformation.general import ApplyConfig

    path = Path(path)
    config = _check_folding_file(path, model)
    folded = ModelWrapper(copy.deepcopy(model.model)).transform(ApplyConfig(config))
    _check_divisibility(folded, path)
    budget = budget_for(board, margin)
    layers = layer_estimates(folded, board.part)
    kinds = overflowing(resource_totals(layers), budget)
    if kinds:
        raise DesignTooLarge(f"the folding in {path} does not fit {board.name}: {', '.join(kinds)} over "
                             f"the budget ({100 * (1 - margin):.0f}% of the board):\n"
                             + overflow_table(layers, budget, kinds))
    return FoldingResult(folded, layers, str(path), budget)


def choose_folding(model: ModelWrapper, board: Board, margin: float = DEFAULT_MARGIN,
                   folding_file: str | Path | None = None, mvau_wwidth_max: int = 36) -> FoldingResult:
    """The user's folding file if given, else the fastest folding that fits (search_folding)."""
    if folding_file is not None:
        return apply_folding_file(model, folding_file, board, margin)
    return search_folding(model, board, margin, mvau_wwidth_max)


FOLDING_ATTRS = ("PE", "SIMD", "parallel_window", "ram_style", "resType", "mem_mode")


def folding_config(result: FoldingResult) -> dict:
    """The chosen folding as a FINN ApplyConfig dict (usable again with --folding)."""
    from finn.util.config import extract_model_config

    return extract_model_config(result.model, subgraph_hier=None, attr_names_to_extract=FOLDING_ATTRS)


def layers_as_dicts(layers: list[LayerEstimate]) -> list[dict]:
    return [asdict(layer) for layer in layers]
