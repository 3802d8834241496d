"""Bit-exact comparison of the WRN's graphs, stage by stage, with the Brevitas model.

For every image (uint8 pixels, batch 1, as exported) each stage's graph is executed with
qonnx/finn ``execute_onnx`` and two things are compared with ``==`` against Brevitas:

  * the predicted label (the first arg max of the integer outputs, as TopK / LabelSelect pick it);
  * the integer pre-scale outputs: the sum over the H x W pooled positions of the int8 class
    scores (Brevitas: output * H * W / head_scale, rounded after checking that it is within
    train.export.INTEGER_TOL of an integer; QONNX / FINN-ONNX graphs: the same from their float
    output; streamlined graph: the head ReduceSum's output, an exact integer; hardware graphs:
    the GlobalAccPool output, an exact integer. Their outputs are the top-1 label: the final
    positive scale head_scale / (H * W) is dropped into the TopK / LabelSelect).

Inputs: a graph whose input is annotated integer takes the raw pixels p; otherwise p / 255.
NHWC graphs (the accelerator's) take the images transposed.

On a mismatch the report names the first node whose output differs: the first quantizing node
of the graph (Quant / MultiThreshold / Thresholding / MVAU with thresholds), in graph order,
whose integer output equals none of the Brevitas quantizer outputs for that image (collected
with forward hooks on every QuantIdentity / QuantReLU, integers = output / scale).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from train.export import INTEGER_TOL

THRESHOLDING_OPS = {"MultiThreshold", "Thresholding", "Thresholding_hls", "Thresholding_rtl"}
MVAU_OPS = {"MVAU", "MVAU_hls", "MVAU_rtl"}
INT_SUM_OPS = {"ReduceSum", "GlobalAccPool", "GlobalAccPool_hls"}


@dataclass
class StageResult:
    stage: str
    images: int = 0
    labels_equal: int = 0
    integers_equal: int = 0
    mismatches: list = field(default_factory=list)  # one dict per differing image

    @property
    def passed(self) -> bool:
        return self.labels_equal == self.integers_equal == self.images


def _as_int(values: np.ndarray, what: str) -> np.ndarray:
    r = np.rint(values)
    if np.abs(values - r).max(initial=0) >= INTEGER_TOL:
        raise AssertionError(f"{what} is not integer-valued (max distance {np.abs(values - r).max():.3g})")
    return r.astype(np.int64)


def brevitas_reference(model: torch.nn.Module, x_uint8: torch.Tensor):
    """Per image: (label, integer pre-scale outputs, list of integer quantizer outputs)."""
    from brevitas.nn import QuantIdentity, QuantReLU

    model = model.cpu().eval()
    captured: list[np.ndarray] = []

    def hook(mod, _inp, out):
        scale = float(mod.act_quant.scale())
        captured.append(_as_int(out.detach().numpy().astype(np.float64) / scale, f"{type(mod).__name__} output"))

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (QuantIdentity, QuantReLU))]
    scale = model.head_scale()
    if scale is None:
        raise ValueError("the model's class scores are not quantized (head_bits); no integer outputs to compare")
    refs = []
    try:
        with torch.no_grad():
            for i in range(len(x_uint8)):
                captured.clear()
                out = model(x_uint8[i:i + 1].float() / 255).numpy()[0].astype(np.float64)
                head = captured[-1]  # the head quantizer's integers, N x classes x H x W
                hw = int(np.prod(head.shape[2:]))
                ints = _as_int(out * hw / scale, "Brevitas pre-scale output")
                if not np.array_equal(ints, head.sum(axis=(2, 3))[0]):
                    raise AssertionError("Brevitas: pooled output differs from the sum of the head's integers")
                # the first arg max of the integers, as TopK / LabelSelect pick it: where two classes
                # tie, the float output's arg max would depend on rounding
                refs.append((int(np.argmax(ints)), ints, list(captured)))
    finally:
        for h in handles:
            h.remove()
    return refs


def _graph_input(model, x_uint8: np.ndarray) -> np.ndarray:
    iname = model.graph.input[0].name
    shape = list(model.get_tensor_shape(iname))
    x = x_uint8.astype(np.float32)
    if not model.get_tensor_datatype(iname).is_integer():
        x = x / np.float32(255)
    if list(x.shape) != shape:
        x = x.transpose(0, 2, 3, 1)  # the accelerator's NHWC
    if list(x.shape) != shape:
        raise ValueError(f"image shape {x_uint8.shape} does not fit the graph input {shape}")
    return x


def _nchw(a: np.ndarray, model, name: str) -> np.ndarray:
    layout = model.get_tensor_layout(name)
    if a.ndim == 4 and layout is not None and list(layout) == ["N", "H", "W", "C"]:
        return a.transpose(0, 3, 1, 2)
    return a


def _node_integers(model, node, ctx) -> np.ndarray | None:
    """Integer output of a quantizing node, or None if the node does not quantize."""
    from qonnx.custom_op.registry import getCustomOp

    out = node.output[0]
    if node.op_type == "Quant":
        scale = model.get_initializer(node.input[1])
        if scale is None or scale.size != 1 or model.get_initializer(node.input[0]) is not None:
            return None  # weight quantizers and per-channel scales: not an activation
        return _as_int(ctx[out].astype(np.float64) / float(scale), node.name)
    if node.op_type in MVAU_OPS and getCustomOp(node).get_nodeattr("noActivation"):
        return None
    if node.op_type in THRESHOLDING_OPS | MVAU_OPS:
        ints = _as_int(_nchw(ctx[out], model, out).astype(np.float64), node.name)
        return ints + _signed_offset(model, node)
    return None


def _signed_offset(model, node) -> int:
    """The integer a signed quantizer adds after its thresholds' count.

    qonnx's ConvertQONNXtoFINN turns a signed k-bit Quant into a MultiThreshold that counts
    (0 .. 2^k - 1) and a following Add of -2^(k-1); streamlining later absorbs that Add into the
    thresholds' out_bias. Without it a correct signed quantizer would match no Brevitas output.
    """
    consumers = model.find_consumers(node.output[0]) or []
    if len(consumers) != 1 or consumers[0].op_type != "Add":
        return 0
    bias = next((model.get_initializer(i) for i in consumers[0].input if i != node.output[0]), None)
    if bias is None or bias.size != 1 or float(bias) != int(bias):
        return 0
    return int(bias)


def first_divergent_node(model, ctx, brevitas_ints: list[np.ndarray]) -> str | None:
    """Name the first quantizing node whose integers equal no Brevitas quantizer output."""
    for node in model.graph.node:
        got = _node_integers(model, node, ctx)
        if got is None:
            continue
        if not any(r.shape == got.shape and np.array_equal(r, got) for r in brevitas_ints):
            return f"{node.name} ({node.op_type})"
    return None


def _stage_outputs(model, ctx) -> tuple[int, np.ndarray | None, np.ndarray | None]:
    """(label, integer sums or None, float output or None) of one executed graph."""
    out = ctx[model.graph.output[0].name]
    sums = [n for n in model.graph.node if n.op_type in INT_SUM_OPS]
    if sums:
        if len(sums) != 1:
            raise ValueError(f"expected one integer pooling node, found {[n.name for n in sums]}")
        s = ctx[sums[0].output[0]].reshape(-1).astype(np.float64)
        ints = np.rint(s).astype(np.int64)
        if not np.array_equal(ints, s):
            raise AssertionError(f"{sums[0].name}: pooled sums are not integers")
        return int(np.asarray(out).reshape(-1)[0]), ints, None
    return int(np.asarray(out).reshape(-1).argmax()), None, np.asarray(out).reshape(-1).astype(np.float64)


def check_stage(stage: str, model, x_uint8: np.ndarray, refs, scale: float) -> StageResult:
    """Execute one stage's graph on every image and compare with the Brevitas references."""
    from finn.core.onnx_exec import execute_onnx

    res = StageResult(stage)
    for i, (ref_label, ref_ints, ref_quant) in enumerate(refs):
        ctx = execute_onnx(model, {model.graph.input[0].name: _graph_input(model, x_uint8[i:i + 1])},
                           return_full_exec_context=True)
        label, ints, fout = _stage_outputs(model, ctx)
        if ints is None:  # a float graph: the pooled mean of the class scores times head_scale
            hw = int(np.prod(ref_quant[-1].shape[2:]))
            ints = _as_int(fout * hw / scale, f"{stage} output")
            label = int(np.argmax(ints))  # as for Brevitas: the first arg max of the integers
        res.images += 1
        res.labels_equal += int(label == ref_label)
        res.integers_equal += int(np.array_equal(ints, ref_ints))
        if label != ref_label or not np.array_equal(ints, ref_ints):
            res.mismatches.append({"image": i, "label": label, "ref_label": ref_label,
                                   "integers": ints.tolist(), "ref_integers": ref_ints.tolist(),
                                   "max_integer_diff": int(np.abs(ints - ref_ints).max()),
                                   "first_divergent_node": first_divergent_node(model, ctx, ref_quant)})
    return res


def check_exactness(brevitas_model, stages: dict, x_uint8) -> dict[str, StageResult]:
    """Compare every stage graph (name -> ModelWrapper) with the Brevitas model on the images."""
    x = x_uint8.numpy() if isinstance(x_uint8, torch.Tensor) else np.asarray(x_uint8)
    refs = brevitas_reference(brevitas_model, torch.from_numpy(x))
    scale = brevitas_model.head_scale()
    return {name: check_stage(name, m, x, refs, scale) for name, m in stages.items()}


def summary(results: dict[str, StageResult]) -> str:
    lines = []
    for r in results.values():
        lines.append(f"{r.stage}: labels {r.labels_equal}/{r.images}, integers {r.integers_equal}/{r.images}"
                     + ("" if r.passed else f"; first mismatch: {r.mismatches[0]}"))
    return "\n".join(lines)
