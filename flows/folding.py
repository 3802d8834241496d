"""Folding (PE / SIMD per layer): the fastest design whose FINN estimates fit the board.

A dataflow accelerator's throughput is set by its slowest layer: clock / max(cycles per
frame). FINN's SetFolding unfolds every layer just enough to meet a target number of cycles
per frame; the smaller the target, the more parallel (and the larger) the design. This module
searches the target: a bisection in log space between the most folded design (PE = SIMD = 1
everywhere) and one cycle per frame, keeping the smallest target whose estimated resources
fit the board's budget times (1 - margin). Estimates are FINN's analytical per-node models
(node_res_estimation, get_exp_cycles), except for the MVAUs that become this project's RTL
(``rtl_mvaus``): those are costed by hw.synth.cost_model, a model of that RTL fitted to yosys
(FINN's is of its HLS MVAU, about twice the RTL's logic). The width converters a folding needs
are inserted and estimated in each trial; the FIFOs (sized later, by simulation) are not, which
is one reason for the margin.

Weight memories of the RTL MVAUs are chosen per layer (``assign_weight_memories``): block RAM
first, and where block RAM runs over its budget the layers whose LUT copy costs least per BRAM
freed move to LUTs, so that both budgets are used. Those MVAUs hold their weights in ROMs, not
in a weight stream, so FINN's limit on the weight stream's width (ap_int's) does not bound their
PE, and larger SIMD caps (mvau_wwidth_max) than FINN's are searched too. After SetFolding,
cheap layers are widened where two stream widths are not multiples (``match_stream_widths``).

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
BLOCK, DISTRIBUTED = "block", "distributed"  # weight memory styles of the RTL MVAUs
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
    model: str = "finn"  # whose estimate: "finn", "rtl", "fifo" (hw.synth.cost_model) or "table"
    ram_style: str | None = None  # weight memory of an RTL MVAU
    finn_LUT: float | None = None  # FINN's own LUT figure, where LUT is another (model "rtl", or scaled)


@dataclass
class FoldingResult:
    model: ModelWrapper
    layers: list[LayerEstimate]
    source: str  # "search" or the folding file's path
    budget: dict[str, float]
    target_cycles: int | None = None
    trials: list[dict] = field(default_factory=list)  # the search, one entry per target tried
    limit: str | None = None  # what stops a faster design (search only)

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


def weight_style(inst) -> str:
    """An RTL MVAU's weight memory: "auto" counts as block RAM, as FINN's estimate counts it."""
    return DISTRIBUTED if inst.get_nodeattr("ram_style") == DISTRIBUTED else BLOCK


def layer_estimates(model: ModelWrapper, fpga_part: str, rtl_mvaus: frozenset[str] = frozenset(),
                    project_rtl: bool | None = None) -> list[LayerEstimate]:
    """The cycle and resource estimate of every hardware layer, in graph order: FINN's, and for
    the MVAUs named in ``rtl_mvaus`` this project's RTL cost model. ``project_rtl`` (default:
    whether there are RTL MVAUs): the flow builds this project's RTL, so the width converters,
    thresholding tables and FIFOs are costed as it builds them."""
    project_rtl = bool(rtl_mvaus) if project_rtl is None else project_rtl
    from qonnx.custom_op.registry import getCustomOp

    from hw.custom_op.maxpool_rtl import MaxPool_rtl
    from hw.custom_op.thresholdtable_rtl import ThresholdTable_rtl, table_bram36, table_folds, table_luts
    from hw.synth.cost_model import predict_dwc_luts, predict_luts, scaled_finn_luts, shape_of

    layers = []
    for node in model.graph.node:
        inst = getCustomOp(node)
        common = dict(name=node.name, op_type=node.op_type, pe=_attr_or_none(inst, "PE"),
                      simd=_attr_or_none(inst, "SIMD"), cycles=int(inst.get_exp_cycles()))
        res = _res_estimation(model, inst, fpga_part)
        if node.name in rtl_mvaus:
            shape, style = shape_of(model, node), weight_style(inst)
            # BRAM: FINN's count of the weight memory (none in LUTs), which the RTL's ROM matches
            layers.append(LayerEstimate(**common, LUT=round(predict_luts(shape, style)),
                                        BRAM36=float(res.get("BRAM_18K", 0)) / 2, DSP=0.0, URAM=0.0,
                                        model="rtl", ram_style=style, finn_LUT=float(res.get("LUT", 0))))
            continue
        finn_luts = float(res.get("LUT", 0))
        if project_rtl and node.op_type == "Thresholding_rtl" and (
                ThresholdTable_rtl.unsupported_reason(model, node) is None):
            # hw.transformation.UseProjectRTL makes it a table lookup: its tables in block RAM
            odt = inst.get_output_datatype().bitwidth()
            layers.append(LayerEstimate(**common, LUT=table_luts(inst.get_nodeattr("PE"), odt),
                                        BRAM36=table_bram36(table_folds(model, node), inst.get_nodeattr("PE"),
                                                            inst.get_input_datatype(0).bitwidth(), odt),
                                        DSP=0.0, URAM=0.0, model="table", finn_LUT=finn_luts))
            continue
        # this project's RTL flow: width converters and max pools (FINN: 0 LUT) by their models,
        # other layers FINN's figure scaled to yosys' count (cost model data)
        if project_rtl and node.op_type.startswith("StreamingDataWidthConverter"):
            luts = round(predict_dwc_luts(inst.get_instream_width(), inst.get_outstream_width()))
        elif project_rtl and node.op_type == "Pool_hls" and MaxPool_rtl.unsupported_reason(model, node) is None:
            luts = MaxPool_rtl(node).lut_estimation()
        elif project_rtl:
            luts = round(scaled_finn_luts(node.op_type, finn_luts))
        else:
            luts = finn_luts
        layers.append(LayerEstimate(**common, LUT=luts, BRAM36=float(res.get("BRAM_18K", 0)) / 2,
                                    DSP=float(res.get("DSP", 0)), URAM=float(res.get("URAM", 0)),
                                    finn_LUT=finn_luts if project_rtl else None))
    if project_rtl:
        layers.append(stream_fifos_estimate(model))
    return layers


FIFOS_ROW = "stream FIFOs"


def stream_fifos_estimate(model: ModelWrapper) -> LayerEstimate:
    """One row for the FIFOs that hw.stitch puts on every stream between two layers, by the cost
    model's mean sized FIFO per stream width (their depths come later, from simulation): so that
    the budget holds for the whole design, not for its layers alone."""
    from qonnx.custom_op.registry import getCustomOp

    from hw.synth.cost_model import predict_fifo_luts

    luts, count = 0.0, 0
    for node in model.graph.node:
        inst = getCustomOp(node)
        for k, tensor in enumerate(node.output):
            for _ in model.find_consumers(tensor) or []:
                luts += predict_fifo_luts(inst.get_outstream_width_padded(k))  # TDATA, whole bytes
                count += 1
    return LayerEstimate(name=f"{FIFOS_ROW} ({count}, model)", op_type="StreamFIFO", pe=None, simd=None, cycles=0,
                         LUT=round(luts), BRAM36=0.0, DSP=0.0, URAM=0.0, model="fifo", finn_LUT=0.0)


def rtl_mvaus(model: ModelWrapper, backend: str = "rtl") -> frozenset[str]:
    """The MVAU nodes this project's RTL will implement (hw.transformation.UseProjectRTL)."""
    if backend != "rtl":
        return frozenset()
    from hw.custom_op.mvau_bipolar_rtl import MVAUBipolar_rtl

    return frozenset(n.name for n in model.graph.node
                     if n.op_type.startswith("MVAU") and MVAUBipolar_rtl.unsupported_reason(model, n) is None)


def block_bram36(inst, fpga_part: str) -> float:
    """FINN's BRAM36 count of an MVAU's weights in block RAM."""
    style = inst.get_nodeattr("ram_style")
    inst.set_nodeattr("ram_style", BLOCK)
    try:
        return inst.bram_estimation(fpga_part) / 2
    finally:
        inst.set_nodeattr("ram_style", style)


def assign_weight_memories(model: ModelWrapper, names: frozenset[str], bram_budget: float,
                           fpga_part: str) -> None:
    """Set ram_style of each RTL MVAU in ``names``: block RAM for all, unless their block RAM
    exceeds ``bram_budget`` (what the other layers leave); then the layers whose LUT copy costs
    the fewest LUT per BRAM36 freed go to LUTs until the rest fits. A layer whose folding file
    says "distributed" stays so."""
    from qonnx.custom_op.registry import getCustomOp

    from hw.synth.cost_model import predict_luts, shape_of

    nodes = [n for n in model.graph.node if n.name in names]
    shapes = {n.name: shape_of(model, n) for n in nodes}
    bram = {n.name: block_bram36(getCustomOp(n), fpga_part) for n in nodes}
    in_block = [n for n in nodes if getCustomOp(n).get_nodeattr("ram_style") != DISTRIBUTED]
    for n in in_block:
        getCustomOp(n).set_nodeattr("ram_style", BLOCK)
    used = sum(bram[n.name] for n in in_block)

    def lut_per_bram(n):
        s = shapes[n.name]
        return (predict_luts(s, DISTRIBUTED) - predict_luts(s, BLOCK)) / max(bram[n.name], 1e-9)

    for n in sorted(in_block, key=lut_per_bram):
        if used <= bram_budget:
            break
        getCustomOp(n).set_nodeattr("ram_style", DISTRIBUTED)
        used -= bram[n.name]


def with_width_converters(model: ModelWrapper) -> ModelWrapper:
    """A copy with the width converters the folding needs (FINN's InsertDWC), for estimates."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from qonnx.transformation.general import GiveUniqueNodeNames

    return ModelWrapper(copy.deepcopy(model.model)).transform(InsertDWC()).transform(GiveUniqueNodeNames())


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

def set_folding(model: ModelWrapper, target_cycles: int, mvau_wwidth_max: int = 36,
                rtl: frozenset[str] = frozenset()) -> ModelWrapper:
    """A copy of the model folded by FINN's SetFolding for the target cycles per frame. The
    MVAUs in ``rtl`` keep their weights in a ROM inside the layer: SetFolding folds them as
    FINN's embedded-weight MVAU (no weight stream, so no limit on PE from its width)."""
    from finn.transformation.fpgadataflow.set_folding import SetFolding
    from qonnx.custom_op.registry import getCustomOp

    folded = ModelWrapper(copy.deepcopy(model.model))
    mvaus = [n for n in folded.graph.node if n.op_type.startswith("MVAU")]
    modes = {n.name: getCustomOp(n).get_nodeattr("mem_mode") for n in mvaus if n.name in rtl}
    for n in mvaus:
        if n.name in modes:
            getCustomOp(n).set_nodeattr("mem_mode", "internal_embedded")
    folded = folded.transform(SetFolding(target_cycles, mvau_wwidth_max=mvau_wwidth_max), make_deepcopy=False)
    for n in folded.graph.node:
        if n.name in modes:
            getCustomOp(n).set_nodeattr("mem_mode", modes[n.name])
    return folded


# Layers whose parallelism costs little (no weights, no window buffer): (folding attribute, the
# attribute holding the dimension it must divide; None = the input's last dimension).
CHEAP_TO_WIDEN = {"FMPadding_rtl": ("SIMD", "NumChannels"), "Thresholding_rtl": ("PE", "NumChannels"),
                  "DuplicateStreams_hls": ("PE", "NumChannels"), "GlobalAccPool_hls": ("PE", "NumChannels"),
                  "ElementwiseAdd_hls": ("PE", None)}


def _multiples(a: int, b: int) -> bool:
    return a % b == 0 or b % a == 0


def _widen_until(node, inst, widths) -> bool:
    """Raise a cheap layer's PE / SIMD to the next divisor of its channels for which ``widths()``
    (producer, consumer) are multiples of one another; False (and unchanged) if none does."""
    if node.op_type not in CHEAP_TO_WIDEN:
        return False
    attr, dim_attr = CHEAP_TO_WIDEN[node.op_type]
    dim = int(inst.get_nodeattr(dim_attr)) if dim_attr else int(inst.get_normal_input_shape()[-1])
    now = int(inst.get_nodeattr(attr))
    for value in (d for d in range(now + 1, dim + 1) if dim % d == 0):
        inst.set_nodeattr(attr, value)
        if _multiples(*widths()):
            return True
    inst.set_nodeattr(attr, now)
    return False


def match_stream_widths(model: ModelWrapper, passes: int = 4) -> list[str]:
    """Widen cheap layers (CHEAP_TO_WIDEN) where a producer's and its consumer's stream widths are
    not multiples of one another. Such a pair needs a width converter through their least common
    multiple, and finn-rtllib's takes one cycle more per group: between a 2-PE threshold (4 bits)
    and a 3-SIMD padding (6 bits) it ran at 4 cycles per 3 beats, 25,088 cycles per image where
    every layer was estimated at 18,816. Returns the layers widened (in place)."""
    from qonnx.custom_op.registry import getCustomOp

    widened = []
    for _ in range(passes):
        changed = False
        for node in model.graph.node:
            cons = getCustomOp(node)
            for i, tensor in enumerate(node.input):
                prod_node = model.find_producer(tensor)
                if prod_node is None:
                    continue
                prod, k = getCustomOp(prod_node), list(prod_node.output).index(tensor)

                def widths(prod=prod, k=k, cons=cons, i=i):
                    return prod.get_outstream_width(k), cons.get_instream_width(i)

                if 0 in widths() or _multiples(*widths()):
                    continue
                for n, inst in ((node, cons), (prod_node, prod)):
                    if _widen_until(n, inst, widths):
                        widened.append(n.name)
                        changed = True
                        break
        if not changed:
            break
    return widened


def estimate_design(folded: ModelWrapper, board: Board, budget: dict[str, float],
                    rtl: frozenset[str]) -> list[LayerEstimate]:
    """Weight memories assigned (in place), then the estimates of every layer and of the width
    converters the folding needs."""
    if rtl:
        others = layer_estimates(folded, board.part, rtl)  # BRAM of every layer but the RTL MVAUs
        assign_weight_memories(folded, rtl, budget["BRAM36"] - sum(la.BRAM36 for la in others if la.name not in rtl),
                               board.part)
    return layer_estimates(with_width_converters(folded), board.part, rtl)


def _trial(model, target, board, budget, mvau_wwidth_max, rtl):
    folded = set_folding(model, target, mvau_wwidth_max, rtl)
    match_stream_widths(folded)
    layers = estimate_design(folded, board, budget, rtl)
    totals = resource_totals(layers)
    fits = not overflowing(totals, budget)
    record = {"mvau_wwidth_max": mvau_wwidth_max,
              "target_cycles": None if target == MOST_FOLDED_TARGET else int(target),  # None: PE = SIMD = 1
              "max_cycles": max(la.cycles for la in layers), "fits": fits,
              **{k: totals[k] for k in CHECKED}}
    return folded, layers, record


def wwidth_candidates(model: ModelWrapper, mvau_wwidth_max: int, rtl: frozenset[str]) -> list[int]:
    """The SIMD caps to search with. FINN's SetFolding raises an MVAU's SIMD up to
    mvau_wwidth_max / weight bits before its PE; that cap exists for FINN's weight stream. When
    every MVAU is an RTL one (weights in a ROM), larger caps are tried too (doubling up to the
    widest MW): a small cap and many PEs share the input fold's replay buffer best, a large one
    lets the stage-1 layers of a big board reach the input stream's rate (with SIMD at 36 and
    PE = MH, a 3x3x48 conv on 28x28 pixels needs 9,408 cycles)."""
    from qonnx.custom_op.registry import getCustomOp

    mvaus = [n for n in model.graph.node if n.op_type.startswith("MVAU")]
    if not mvaus or not all(n.name in rtl for n in mvaus):
        return [mvau_wwidth_max]
    widest = max(getCustomOp(n).get_nodeattr("MW") for n in mvaus)
    caps = [mvau_wwidth_max]
    while caps[-1] < widest:
        caps.append(caps[-1] * 2)
    return caps


def search_folding(model: ModelWrapper, board: Board, margin: float = DEFAULT_MARGIN,
                   mvau_wwidth_max: int = 36, rtl: frozenset[str] = frozenset()) -> FoldingResult:
    """The fastest fitting folding over every SIMD cap of wwidth_candidates (search_target for
    each); of equally fast ones the one with the fewest LUTs. trials holds every search's trials."""
    best, trials = None, []
    for cap in wwidth_candidates(model, mvau_wwidth_max, rtl):
        result = search_target(model, board, margin, cap, rtl)
        trials += result.trials
        key = (result.max_cycles, result.totals()["LUT"])
        if best is None or key < (best.max_cycles, best.totals()["LUT"]):
            best = result
    best.trials = trials
    best.limit = search_limit(best, trials)
    return best


def search_limit(result: FoldingResult, trials: list[dict]) -> str:
    """One line: what stops the search from a faster design than ``result``: the nearest faster
    trial that did not fit, else the slowest layer of a fully unfolded design. (Target 1 alone
    is not "fully unfolded": under a SIMD cap FINN's SetFolding relaxes the target to the capped
    layers' cycles and folds the others to match, so a faster trial of a larger cap may exist.)"""
    faster = [t for t in trials if not t["fits"] and t["max_cycles"] < result.max_cycles]
    if not faster and result.target_cycles == 1:
        slowest = max(result.layers, key=lambda la: la.cycles)
        return (f"fully unfolded: {slowest.name} ({slowest.op_type}) at {slowest.cycles:,} cycles per frame "
                "is the slowest layer with every PE / SIMD at its maximum")
    if not faster:
        return "no faster folding was found by SetFolding's targets"
    nearest = max(faster, key=lambda t: t["max_cycles"])
    over = [k for k in CHECKED if nearest[k] > result.budget[k]]
    return (f"the next faster folding found ({nearest['max_cycles']:,} cycles per frame, SIMD cap "
            f"{nearest['mvau_wwidth_max']}) needs " + ", ".join(f"{k} {nearest[k]:,.0f}" for k in over)
            + " over the budget of " + ", ".join(f"{result.budget[k]:,.0f}" for k in over))


def search_target(model: ModelWrapper, board: Board, margin: float = DEFAULT_MARGIN,
                  mvau_wwidth_max: int = 36, rtl: frozenset[str] = frozenset()) -> FoldingResult:
    """The smallest cycles-per-frame target (highest throughput) whose design fits the budget.

    Assumes that resources grow as the target shrinks (more PE/SIMD), which holds for FINN's
    estimates up to small steps; the bisection runs in log space because targets span orders
    of magnitude. Raises DesignTooLarge when even the most folded design does not fit.
    """
    budget = budget_for(board, margin)
    folded, layers, first = _trial(model, MOST_FOLDED_TARGET, board, budget, mvau_wwidth_max, rtl)
    trials = [first]
    if not first["fits"]:
        kinds = overflowing(resource_totals(layers), budget)
        raise DesignTooLarge(
            f"the design does not fit {board.name} even fully folded (PE = SIMD = 1): "
            f"{', '.join(kinds)} over the budget ({100 * (1 - margin):.0f}% of the board):\n"
            + overflow_table(layers, budget, kinds))
    best = (folded, layers, first["max_cycles"])
    fit_target, miss_target = first["max_cycles"], 1  # fit_target fits; below miss_target is unknown
    folded, layers, rec = _trial(model, 1, board, budget, mvau_wwidth_max, rtl)
    trials.append(rec)
    if rec["fits"]:  # fully unfolded fits: nothing to search
        return FoldingResult(folded, layers, "search", budget, 1, trials)
    while fit_target / miss_target > SEARCH_PRECISION and fit_target - miss_target > 1:
        target = max(miss_target + 1, min(fit_target - 1, round(math.sqrt(fit_target * miss_target))))
        folded, layers, rec = _trial(model, target, board, budget, mvau_wwidth_max, rtl)
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
    _refuse_free_strings(path, config, model)
    return config


def _refuse_free_strings(path: Path, config: dict, model: ModelWrapper) -> None:
    """ApplyConfig sets any attribute it is given. A free-form string attribute (one without a
    fixed set of values) names a folder the code is generated in, a library FINN loads or an HDL
    module (code_gen_dir_ipgen, rtlsim_so, gen_top_module): a folding file from someone else must
    not choose those. Folding settings are numbers or strings from a fixed set (ram_style, ...),
    and FOLDING_ATTRS, which a build's own folding_config.json holds (FINN's ElementwiseAdd_rtl
    declares mem_mode without its set of values, but only compares it with them)."""
    from qonnx.custom_op.registry import getCustomOp

    defaults = config.get("Defaults", {})
    for key, entry in config.items():
        if not isinstance(entry, dict):
            raise UserError(f"{path}: {key} must map attribute names to values, got {type(entry).__name__}")
    for node in model.graph.node:
        try:
            inst = getCustomOp(node)
        except Exception:  # a standard ONNX node: ApplyConfig leaves it alone
            continue
        types = inst.get_nodeattr_types()
        for attr in [*config.get(node.name, {}), *defaults]:
            if attr not in types or attr in FOLDING_ATTRS:
                continue
            dtype, _, _, allowed = inst.get_nodeattr_def(attr)
            if dtype in ("s", "strings") and allowed is None:
                raise UserError(f"{path}: {attr} is not a folding setting (a free-form string, which may name a "
                                "file, folder or HDL module the build chooses itself); a folding file sets PE, "
                                "SIMD, ram_style, ...")


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
                       margin: float = DEFAULT_MARGIN, rtl: frozenset[str] = frozenset()) -> FoldingResult:
    """Apply a FINN folding config (ApplyConfig JSON) as given; refuse it if it does not fit."""
    from finn.transformation.general import ApplyConfig

    path = Path(path)
    config = _check_folding_file(path, model)
    folded = ModelWrapper(copy.deepcopy(model.model)).transform(ApplyConfig(config))
    _check_divisibility(folded, path)
    budget = budget_for(board, margin)
    layers = estimate_design(folded, board, budget, rtl)
    kinds = overflowing(resource_totals(layers), budget)
    if kinds:
        raise DesignTooLarge(f"the folding in {path} does not fit {board.name}: {', '.join(kinds)} over "
                             f"the budget ({100 * (1 - margin):.0f}% of the board):\n"
                             + overflow_table(layers, budget, kinds))
    return FoldingResult(folded, layers, str(path), budget)


def choose_folding(model: ModelWrapper, board: Board, margin: float = DEFAULT_MARGIN,
                   folding_file: str | Path | None = None, mvau_wwidth_max: int = 36,
                   backend: str = "rtl") -> FoldingResult:
    """The user's folding file if given, else the fastest folding that fits (search_folding).
    ``backend``: "rtl" (this project's RTL MVAUs, costed by its model) or "hls" (FINN's)."""
    rtl = rtl_mvaus(model, backend)
    if folding_file is not None:
        return apply_folding_file(model, folding_file, board, margin, rtl)
    return search_folding(model, board, margin, mvau_wwidth_max, rtl)


FOLDING_ATTRS = ("PE", "SIMD", "parallel_window", "ram_style", "resType", "mem_mode")


def folding_config(result: FoldingResult) -> dict:
    """The chosen folding as a FINN ApplyConfig dict (usable again with --folding)."""
    from finn.util.config import extract_model_config

    return extract_model_config(result.model, subgraph_hier=None, attr_names_to_extract=FOLDING_ATTRS)


def layers_as_dicts(layers: list[LayerEstimate]) -> list[dict]:
    return [asdict(layer) for layer in layers]
