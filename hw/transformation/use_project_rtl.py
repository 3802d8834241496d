"""Swap FINN's HLS layers for this project's RTL where one exists and can implement the node.

Why after FINN's specialize_layers and folding, not inside them: FINN's SetFolding only knows
its own op types (``MVAU_hls``, ``DuplicateStreams_hls``, ...), and FINN's specialize picks
``MVAU_rtl`` / ``ElementwiseAdd_rtl`` by name for MVAU and ElementwiseAdd (its DSP MVU, its
float-only adder). So the flow folds FINN's HLS nodes and then this transformation replaces
each one by the project's RTL op with every folding attribute kept. ``backend="hls"`` keeps
FINN's HLS layers (for a Vivado/Vitis flow that wants them).
"""

from __future__ import annotations

from qonnx.custom_op.registry import getCustomOp
from qonnx.transformation.base import Transformation

import hw.custom_op  # noqa: F401  (registers the project's RTL ops)
from hw.custom_op import PROJECT_RTL_OPS

RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"


def project_rtl_for() -> dict[str, type]:
    """FINN op type (its specialization) -> the project's RTL op class that replaces it."""
    names = {
        "MVAU_hls": "MVAUBipolar_rtl",
        "DuplicateStreams_hls": "DuplicateStreams_rtl",
        "ElementwiseAdd_hls": "ElementwiseAddStreams_rtl",
        "GlobalAccPool_hls": "GlobalAccPool_rtl",
        "LabelSelect_hls": "LabelSelect_rtl",
        "Pool_hls": "MaxPool_rtl",  # Function MaxPool (MaxPool_rtl.unsupported_reason)
        # FINN specializes its width converter to finn-rtllib's (StreamingDataWidthConverter_rtl)
        "StreamingDataWidthConverter_rtl": "StreamWidthConverter_rtl",
        "StreamingDataWidthConverter_hls": "StreamWidthConverter_rtl",
        # where a table in block RAM beats FINN's comparators (ThresholdTable_rtl.unsupported_reason)
        "Thresholding_rtl": "ThresholdTable_rtl",
        "Thresholding_hls": "ThresholdTable_rtl",
    }
    return {hls: PROJECT_RTL_OPS[rtl] for hls, rtl in names.items() if rtl in PROJECT_RTL_OPS}


class UseProjectRTL(Transformation):
    """Replace supported ``*_hls`` nodes (and FINN RTL layers where this project's does better)
    by the project's RTL ops; ``kept`` records the nodes left as HLS and why (one line each),
    ``kept_finn_rtl`` the finn-rtllib layers left as they are and why."""

    def __init__(self, backend: str = "rtl"):
        super().__init__()
        if backend not in ("rtl", "hls"):
            raise ValueError(f"backend must be 'rtl' or 'hls', got {backend!r}")
        self.backend = backend
        self.kept: dict[str, str] = {}
        self.kept_finn_rtl: dict[str, str] = {}

    def apply(self, model):
        if self.backend == "hls":
            return model, False
        table = project_rtl_for()
        for node in model.graph.node:
            cls = table.get(node.op_type)
            if cls is None:
                if node.op_type.endswith("_hls"):  # e.g. BinaryDenseNet's StreamingConcat_hls
                    self.kept[node.name] = f"{node.op_type} kept: no RTL for it in this project or finn-plus"
                continue
            reason = cls.unsupported_reason(model, node)
            if reason:
                if node.op_type.endswith("_hls"):
                    self.kept[node.name] = f"{node.op_type} kept: {reason}"
                else:  # a finn-rtllib layer where this project's would not pay (few thresholds)
                    self.kept_finn_rtl[node.name] = f"{node.op_type} kept: {reason}"
                continue
            keep = set(cls(node).get_nodeattr_types())
            for attr in [a for a in node.attribute if a.name not in keep]:
                node.attribute.remove(attr)  # HLS-only settings (hls_style, resType, ...)
            node.op_type, node.domain = cls.__name__, RTL_DOMAIN
            getCustomOp(node)  # resolves: fails here, not later, if registration broke
        return model, False
