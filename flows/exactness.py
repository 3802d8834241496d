"""Bit-exact comparison of the lowered graphs, stage by stage, with the QONNX model as given.

The reference is the user's QONNX file executed by qonnx (flows.reference): for every image,
its label and the integers of its last integer-valued tensor (the quantity the accelerator
outputs: e.g. the class-score sums a GlobalAccPool gives, or the accumulators of a last binary
layer without output quantizer). Each stage's graph (finn, streamlined, hw) is executed with
FINN's executor on the integers the model's input quantizer gives (float inputs p * scale where a
graph still takes floats), its float tail (flows.float_tail) after it, and compared with ``==``:

  * the label (a TopK / LabelSelect output, else the first arg max of the integers, else the arg
    max of the float tail's output);
  * the integers at the stage's own output point (flows.reference.output_point), flattened in
    NHWC order.

Where the model comes with this project's checkpoint, ``brevitas_reference`` gives the same two
quantities from the Brevitas model (its class scores' integers, summed over H x W) and
``compare_with_brevitas`` checks the QONNX reference against them.

On a mismatch the report names the first node whose output differs: the first quantizing node
of the graph (Quant / MultiThreshold / Thresholding / MVAU with thresholds), in graph order,
whose integer output equals none of the QONNX model's activation quantizer outputs for that image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from flows.reference import as_integers, output_point, read_integers

CHECKED_STAGES = ("finn", "streamlined", "hw")
THRESHOLDING_OPS = {"MultiThreshold", "Thresholding", "Thresholding_hls", "Thresholding_rtl"}
MVAU_OPS = {"MVAU", "MVAU_hls", "MVAU_rtl"}


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


def brevitas_reference(model: torch.nn.Module, x_float, batch: int = 100):
    """This project's Brevitas model (class scores quantized: head_bits) on float inputs
    (N x C x H x W, e.g. pixels / 255), ``batch`` images at a time. Per image: (label, integer
    pre-scale outputs summed over H x W)."""
    from brevitas.nn import QuantIdentity, QuantReLU

    model = model.cpu().eval()
    last: list = [None]  # the latest quantizer output: after a forward pass, the head's

    def hook(mod, _inp, out):
        last[0] = (mod, out)

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (QuantIdentity, QuantReLU))]
    scale = model.head_scale()
    if scale is None:
        raise ValueError("the model's class scores are not quantized (head_bits); no integer outputs to compare")
    refs = []
    try:
        x = torch.as_tensor(np.asarray(x_float, dtype=np.float32))
        with torch.no_grad():
            for start in range(0, len(x), batch):
                out = model(x[start:start + batch]).numpy().astype(np.float64)
                mod, head = last[0]  # the head quantizer's output, N x classes x H x W
                head = as_integers(head.numpy().astype(np.float64) / float(mod.act_quant.scale()), "Brevitas head")
                hw = int(np.prod(head.shape[2:]))
                ints = as_integers(out * hw / scale, "Brevitas pre-scale output")
                if not np.array_equal(ints, head.sum(axis=(2, 3))):
                    raise AssertionError("Brevitas: pooled output differs from the sum of the head's integers")
                # the first arg max of the integers, as TopK / LabelSelect pick it: where two classes
                # tie, the float output's arg max would depend on rounding
                refs += [(int(np.argmax(row)), row) for row in ints]
    finally:
        for h in handles:
            h.remove()
    return refs


def stage_input(model, p: np.ndarray, scale: float) -> np.ndarray:
    """The input of a stage graph for integer inputs p (N x C x H x W): p where the graph takes
    integers (its input quantizer became a scale), p * scale where it still takes floats; NHWC
    where the graph's input is (the accelerator's), flat where it takes the flattened image."""
    iname = model.graph.input[0].name
    shape = list(model.get_tensor_shape(iname))
    x = np.asarray(p, dtype=np.float32)
    dt = model.get_tensor_datatype(iname)
    if not dt.is_integer():
        x = x * np.float32(scale)
    elif dt.name == "BINARY" and (x < 0).any():
        x = (x + 1) / 2  # a sign's +-1 as the bits an xnor-popcount layer takes (-1 -> 0)
    if list(x.shape[1:]) != shape[1:] and x.ndim == 4 and len(shape) == 4:
        x = x.transpose(0, 2, 3, 1)  # the accelerator's NHWC
    if list(x.shape[1:]) != shape[1:] and len(shape) == 2 and x[0].size == shape[1]:
        x = x.reshape(len(x), -1)  # an image the host flattens (flows.transformation.integer_input.InputFlattenToHost)
    if list(x.shape[1:]) != shape[1:]:
        raise ValueError(f"input shape {p.shape} does not fit the graph input {shape}")
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
        return as_integers(ctx[out].astype(np.float64) / float(scale), node.name)
    if node.op_type in MVAU_OPS and getCustomOp(node).get_nodeattr("noActivation"):
        return None
    if node.op_type in THRESHOLDING_OPS | MVAU_OPS:
        ints = as_integers(_nchw(ctx[out], model, out).astype(np.float64), node.name)
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


def stage_label(model, ctx, point, ints: np.ndarray, final_out: np.ndarray) -> int:
    """A stage's label: its TopK / LabelSelect output, else that of its float tail (a TopK index,
    or the arg max of its float output), else the first arg max of its integers."""
    from flows.float_tail import float_tail_of, label_of_tail_output

    if point.label_node is not None:
        return int(np.asarray(ctx[model.graph.output[0].name]).reshape(-1)[0])
    tail = float_tail_of(model)
    if tail is not None:
        return label_of_tail_output(tail, final_out)
    if point.float_tail:  # a graph not split (e.g. FINN-ONNX before streamlining)
        return int(np.argmax(np.asarray(final_out).reshape(-1)))
    return int(np.argmax(ints))


def check_stage(stage: str, model, p: np.ndarray, reference) -> StageResult:
    """Execute one stage's graph (and its float tail) on every image's integers ``p`` and compare
    with the QONNX reference (flows.reference.QonnxReference)."""
    from flows.float_tail import execute_with_tail

    res = StageResult(stage)
    point = output_point(model)
    scale = reference.input_scale
    for i, ref in enumerate(reference.images):
        ctx, final = execute_with_tail(model, {model.graph.input[0].name: stage_input(model, p[i:i + 1], scale)})
        ints = read_integers(model, ctx, point)
        label = stage_label(model, ctx, point, ints, final)
        same_ints = ints.shape == ref.integers.shape and np.array_equal(ints, ref.integers)
        res.images += 1
        res.labels_equal += int(label == ref.label)
        res.integers_equal += int(same_ints)
        if label != ref.label or not same_ints:
            res.mismatches.append({
                "image": i, "label": label, "ref_label": ref.label, "integers": ints.tolist()[:64],
                "ref_integers": ref.integers.tolist()[:64],
                "max_integer_diff": (int(np.abs(ints - ref.integers).max()) if ints.shape == ref.integers.shape
                                     else f"shapes differ: {ints.shape} vs {ref.integers.shape}"),
                "first_divergent_node": first_divergent_node(model, ctx, ref.quantizers)})
    return res


def check_exactness(reference, stages: dict, p: np.ndarray) -> dict[str, StageResult]:
    """Compare every stage graph (name -> ModelWrapper) with the QONNX reference on the integer
    inputs ``p`` (N x C x H x W, the ones the reference was run on)."""
    return {name: check_stage(name, m, np.asarray(p), reference) for name, m in stages.items()}


def compare_with_brevitas(reference, brevitas_refs) -> StageResult:
    """The QONNX reference against this project's Brevitas model on the same images."""
    res = StageResult("brevitas")
    for i, (ref, (label, ints)) in enumerate(zip(reference.images, brevitas_refs)):
        same = ints.shape == ref.integers.shape and np.array_equal(ints, ref.integers)
        res.images += 1
        res.labels_equal += int(label == ref.label)
        res.integers_equal += int(same)
        if label != ref.label or not same:
            res.mismatches.append({"image": i, "label": ref.label, "brevitas_label": label,
                                   "integers": ref.integers.tolist()[:64], "brevitas_integers": ints.tolist()[:64]})
    return res


def summary(results: dict[str, StageResult]) -> str:
    lines = []
    for r in results.values():
        lines.append(f"{r.stage}: labels {r.labels_equal}/{r.images}, integers {r.integers_equal}/{r.images}"
                     + ("" if r.passed else f"; first mismatch: {r.mismatches[0]}"))
    return "\n".join(lines)
