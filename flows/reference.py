"""The software reference for any QONNX model: the model as the user gave it, run by qonnx.

Verification compares the accelerator with the QONNX file itself (executed with qonnx's
``execute_onnx``), not with anything this project's trainer wrote, so any Brevitas model works:

  * inputs: the accelerator takes integers. They come from the model's own input quantizer
    (``InputQuantizer``: the Quant node at the graph input, unsigned, zero point 0, any scalar
    scale): p = Quant(x) / scale, computed with qonnx's quant function. The QONNX model takes the
    float x; every lowered graph (whose input quantizer became a scale, flows.transformation.integer_input.IntegerInput)
    takes p.
  * integers compared: the last integer-valued tensor before any float tail. ``integer_scales``
    follows integrality through a graph: a quantizer's output is an integer times its scale c;
    convolutions / matrix products of such a tensor with quantized weights (scalar weight scale)
    keep it (scale c * weight scale; a bias is subtracted first), as do max-pools, reshapes,
    transposes, concatenations and adds of equal scales; an average over H x W divides the scale
    by H * W (the integer is then the sum over H x W, as FINN's GlobalAccPool gives it). The
    integer tensor is the last such tensor on the way to the output; ``value / scale`` is checked
    to be integral before it is rounded.
  * the label: the first arg max of those integers where the rest of the graph is a positive
    scalar scale (as FINN's TopK / LabelSelect pick it: a float arg max would depend on rounding
    at ties); the arg max of the model's float output where a float tail (per-channel affine,
    bias, ...) follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from common.errors import UserError
from flows.graph import base_op, node_attrs
from train.export import INTEGER_TOL  # |value / scale - nearest integer| below it counts as integer

# ops that pass an integer tensor through with its scale unchanged
SCALE_PRESERVING = {"Relu", "MaxPool", "MaxPoolNHWC", "Reshape", "Flatten", "Transpose", "Identity", "Squeeze",
                    "Unsqueeze", "Im2Col", "Pad"}
# FINN hardware layers with integer outputs (scale 1) whatever they compute
FINN_INTEGER_OPS = ("MVAU", "ConvolutionInputGenerator", "FMPadding", "DuplicateStreams",
                    "AddStreams", "ElementwiseAdd", "GlobalAccPool", "Pool", "StreamingConcat",
                    "StreamingDataWidthConverter", "StreamingFIFO")
LABEL_OPS = ("TopK", "LabelSelect")


# ----------------------------------------------------------------------------------------------
# The input quantizer
# ----------------------------------------------------------------------------------------------

@dataclass
class InputQuantizer:
    """The Quant node at a QONNX model's input: x (float) -> p = Quant(x) / scale (integers)."""

    node_name: str
    scale: float
    bits: int
    rounding_mode: str = "ROUND"

    @property
    def low(self) -> int:
        return 0

    @property
    def high(self) -> int:
        return 2 ** self.bits - 1

    @property
    def datatype(self) -> str:
        return f"UINT{self.bits}"

    def to_integers(self, x: np.ndarray) -> np.ndarray:
        """The integers the accelerator receives for float inputs x (qonnx's Quant, divided by its scale)."""
        from qonnx.custom_op.general.quant import quant

        q = quant(np.asarray(x, dtype=np.float32), np.float32(self.scale), np.float32(0), np.float32(self.bits),
                  signed=False, narrow=False, rounding_mode=self.rounding_mode)
        return as_integers(np.asarray(q, dtype=np.float64) / np.float64(np.float32(self.scale)),
                           f"{self.node_name} output / scale")

    def to_floats(self, p: np.ndarray) -> np.ndarray:
        """Float inputs that quantize to the integers p (p * scale, as the QONNX model sees them)."""
        return (np.asarray(p, dtype=np.float32) * np.float32(self.scale)).astype(np.float32)

    def from_images(self, x01: np.ndarray) -> np.ndarray:
        """A data set's images (pixels / 255) as the model takes them."""
        return np.asarray(x01, dtype=np.float32)

    def qonnx_inputs(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """What the QONNX model is fed: the floats that quantize to p exactly."""
        return self.to_floats(p)

    def random(self, k: int, shape: tuple, seed: int):
        return random_integers(self, k, shape, seed, "the input quantizer's")

    def description(self) -> str:
        return f"the input quantizer's {self.datatype} integers (Quant(x) / {self.scale:.6g})"


def random_integers(inp, k: int, shape: tuple, seed: int, whose: str):
    """k random inputs whose integers cover ``inp``'s whole range [low, high], as the model takes
    them (inp.to_floats), and the line that says so."""
    p = np.random.default_rng(seed).integers(inp.low, inp.high + 1, size=(k, *shape))
    return inp.to_floats(p), (f"random integers over {whose} whole range {inp.datatype} "
                              f"[{inp.low}, {inp.high}] (seed {seed}; no data set given)")


def input_quantizer(model, path="the model") -> InputQuantizer:
    """The model's input quantizer, or one UserError line saying why there is none usable."""
    iname = model.graph.input[0].name
    consumers = model.find_consumers(iname) or []
    hint = ("the accelerator takes integers: put an unsigned quantizer at the input, e.g. "
            "brevitas.nn.QuantIdentity(act_quant=Uint8ActPerTensorFloat)")
    if len(consumers) != 1 or consumers[0].op_type != "Quant":
        found = ", ".join(f"{c.name} ({c.op_type})" for c in consumers) or "nothing"
        raise UserError(f"{path} has no input quantizer (its input {iname} feeds {found}); {hint}")
    q = consumers[0]
    scale, zp, bits = (model.get_initializer(t) for t in q.input[1:4])
    a = node_attrs(q)
    if scale is None or zp is None or bits is None or np.size(scale) != 1 or np.any(zp != 0):
        raise UserError(f"{path}: the input quantizer {q.name} needs a constant scalar scale and zero point 0; {hint}")
    if a.get("signed", 1) or a.get("narrow", 0):
        raise UserError(f"{path}: the input quantizer {q.name} is signed or narrow; {hint}")
    mode = a.get("rounding_mode", "ROUND")
    return InputQuantizer(q.name, float(np.asarray(scale).reshape(-1)[0]), int(np.asarray(bits).reshape(-1)[0]),
                          mode.decode() if isinstance(mode, bytes) else mode)


class IntegerGraphInput:
    """A QONNX input declared integer (FINN's recipe: UINT8 pixels, a ``x / 255`` merged in
    front): the accelerator takes the input's values themselves."""

    def __init__(self, name: str, datatype):
        self.node_name, self.dt = name, datatype
        self.scale = 1.0

    @property
    def low(self) -> int:
        return int(self.dt.min())

    @property
    def high(self) -> int:
        return int(self.dt.max())

    @property
    def datatype(self) -> str:
        return self.dt.name

    def to_integers(self, x: np.ndarray) -> np.ndarray:
        p = as_integers(np.asarray(x, dtype=np.float64), f"input {self.node_name}")
        if p.size and (p.min() < self.low or p.max() > self.high):
            raise UserError(f"the model's input {self.node_name} is {self.datatype}, the inputs hold values in "
                            f"[{p.min()}, {p.max()}]")
        return p

    def to_floats(self, p: np.ndarray) -> np.ndarray:
        return np.asarray(p, dtype=np.float32)

    def from_images(self, x01: np.ndarray) -> np.ndarray:
        """A data set's images (pixels / 255) as this input takes them: the raw pixels."""
        if self.dt.name != "UINT8":
            raise UserError(f"the model's input {self.node_name} is {self.datatype}; a data set gives 8-bit pixels")
        return np.rint(np.asarray(x01, dtype=np.float64) * 255).astype(np.float32)

    def qonnx_inputs(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        return self.to_floats(p)

    def random(self, k: int, shape: tuple, seed: int):
        return random_integers(self, k, shape, seed, "the input's")

    def description(self) -> str:
        return f"the model's input, declared {self.datatype}: the accelerator takes it as it is"


class HeadInput:
    """A float input with float ops in front of its first quantizer: the host runs them and the
    quantizer's rounding (flows.float_head), the accelerator takes the quantizer's integers."""

    def __init__(self, head, datatype: str):
        from flows.float_head import head_input_range

        self.head, self.datatype = head, datatype
        self.node_name = head.graph.node[-1].name
        self.scale = 1.0
        self.range = head_input_range(head)

    def to_integers(self, x: np.ndarray) -> np.ndarray:
        from flows.float_head import head_integers

        return head_integers(self.head, x)

    def qonnx_inputs(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """x itself: the model's own float ops compute p from it as the head does."""
        return np.asarray(x, dtype=np.float32)

    def from_images(self, x01: np.ndarray) -> np.ndarray:
        return np.asarray(x01, dtype=np.float32)

    def random(self, k: int, shape: tuple, seed: int):
        lo, hi = self.range or (0.0, 1.0)
        x = np.random.default_rng(seed).uniform(lo, hi, size=(k, *shape)).astype(np.float32)
        what = (f"the interval [{lo:.6g}, {hi:.6g}] the input quantizer maps onto {self.datatype}" if self.range
                else "[0, 1] (the float head is not scalar affine)")
        return x, f"random floats uniform over {what} (seed {seed}; no data set given)"

    def description(self) -> str:
        ops = ", ".join(n.op_type for n in self.head.graph.node)
        what = ("+-1 values (as bits where the first layer is an xnor-popcount)" if self.datatype == "BIPOLAR"
                else f"{self.datatype} integers")
        return f"float head on the host ({ops}), the accelerator takes its {what}"


def accelerator_input(model, path="the model"):
    """What turns the QONNX model's inputs into the accelerator's integers: its input
    quantizer (InputQuantizer), the input itself where it is declared integer
    (IntegerGraphInput), or a float head the host runs (HeadInput); else one UserError line."""
    from qonnx.core.datatype import DataType

    from flows.float_head import float_head_of, needs_head, split_head

    iname = model.graph.input[0].name
    dt = model.get_tensor_datatype(iname)
    if dt.is_integer():
        return IntegerGraphInput(iname, dt)
    plan = needs_head(model)
    if plan is not None:
        from qonnx.core.modelwrapper import ModelWrapper

        body = split_head(ModelWrapper(model.model, make_deepcopy=True), plan)
        return HeadInput(float_head_of(body), body.get_tensor_datatype(iname).name)
    return input_quantizer(model, path)


def as_integers(values: np.ndarray, what: str) -> np.ndarray:
    r = np.rint(values)
    dist = np.abs(values - r).max(initial=0)
    if dist >= INTEGER_TOL:
        raise AssertionError(f"{what} is not integer-valued (max distance {dist:.3g})")
    return r.astype(np.int64)


# ----------------------------------------------------------------------------------------------
# Integer tensors of a graph
# ----------------------------------------------------------------------------------------------

@dataclass
class IntegerTensor:
    """``(value - bias) / scale`` of tensor ``name`` is an integer (``bias``: an initializer or None)."""

    name: str
    scale: float
    bias: str | None = None
    via: str = ""  # the node that produced it, for the report


def _scalar(model, name) -> float | None:
    v = model.get_initializer(name)
    if v is None or np.size(v) != 1:
        return None
    return float(np.asarray(v).reshape(-1)[0])


def _weight_scale(model, name) -> float | None:
    """The scalar scale of a weight tensor: 1 for integer-valued initializers, the magnitude of
    binary ones (+-s, as FINN folds a quantized weight), the Quant / BipolarQuant scale for a
    quantized initializer; None otherwise (per-channel, float)."""
    w = model.get_initializer(name)
    if w is not None:
        if np.array_equal(w, np.rint(w)):
            return 1.0
        mags = np.unique(np.abs(w[w != 0]))
        return float(mags[0]) if len(mags) == 1 else None
    q = model.find_producer(name)
    if q is None or q.op_type not in ("Quant", "BipolarQuant") or model.get_initializer(q.input[0]) is None:
        return None
    return _scalar(model, q.input[1])


def _spatial_size(model, node) -> int | None:
    """H * W of a global average over the spatial axes of an N x C x H x W tensor, else None."""
    shape = model.get_tensor_shape(node.input[0])
    if shape is None or len(shape) != 4:
        return None
    if node.op_type == "GlobalAveragePool":
        return int(shape[2] * shape[3])
    if node.op_type == "ReduceMean":
        axes = model.get_initializer(node.input[1]) if len(node.input) > 1 else node_attrs(node).get("axes")
        if axes is not None and sorted(int(a) % 4 for a in np.asarray(axes).reshape(-1)) == [2, 3]:
            return int(shape[2] * shape[3])
    return None


def _node_scale(model, node, known: dict) -> IntegerTensor | None:
    """The integer scale of ``node``'s first output from those of its inputs, or None."""
    op, out = node.op_type, node.output[0]
    base = base_op(op)
    ins = [known.get(i) for i in node.input]
    x = ins[0] if ins else None
    if op == "Quant" and model.get_initializer(node.input[0]) is None:
        s = _scalar(model, node.input[1])
        zp = model.get_initializer(node.input[2])
        return IntegerTensor(out, s, via=node.name) if s and zp is not None and not np.any(zp != 0) else None
    if op == "BipolarQuant" and model.get_initializer(node.input[0]) is None:
        s = _scalar(model, node.input[1])
        return IntegerTensor(out, s, via=node.name) if s else None
    if base in ("MultiThreshold", "Thresholding") or (base == "MVAU" and not node_attrs(node).get("noActivation", 0)):
        a = node_attrs(node)  # thresholds count: an integer whatever the input (out_bias + k * out_scale)
        scale, bias = float(a.get("out_scale", 1.0)), float(a.get("out_bias", 0.0))
        if scale.is_integer() and bias.is_integer():  # e.g. a sign: 2 * {0, 1} - 1 = +-1
            return IntegerTensor(out, 1.0, via=node.name)
        return IntegerTensor(out, scale, via=node.name) if (bias / scale).is_integer() else None
    if base in FINN_INTEGER_OPS:
        return IntegerTensor(out, 1.0, via=node.name) if all(
            known.get(i) is not None or model.get_initializer(i) is not None for i in node.input) else None
    if x is None or x.bias is not None:
        return None
    if op in SCALE_PRESERVING:
        return IntegerTensor(out, x.scale, via=node.name)
    if op in ("Conv", "MatMul", "Gemm"):
        a = node_attrs(node)
        ws = _weight_scale(model, node.input[1])
        if ws is None or (op == "Gemm" and (a.get("alpha", 1.0) != 1.0 or a.get("transA", 0))):
            return None
        bias = node.input[2] if len(node.input) > 2 and node.input[2] else None
        if bias is not None and (model.get_initializer(bias) is None or (op == "Gemm" and a.get("beta", 1.0) != 1.0)):
            return None
        return IntegerTensor(out, x.scale * ws, bias, via=node.name)
    if op in ("Add", "Concat"):
        others = [known.get(i) for i in node.input[1:]]
        if op == "Add" and others[0] is None:  # integer + constant: an integer if the constant is one
            c = model.get_initializer(node.input[1])
            ok = c is not None and np.array_equal(c / x.scale, np.rint(c / x.scale))
            return IntegerTensor(out, x.scale, via=node.name) if ok else None
        if all(o is not None and o.bias is None and o.scale == x.scale for o in others):
            return IntegerTensor(out, x.scale, via=node.name)
        return None
    if op == "Mul":
        k = _scalar(model, node.input[1])
        return IntegerTensor(out, x.scale * k, via=node.name) if k else None
    if op in ("GlobalAveragePool", "ReduceMean"):
        hw = _spatial_size(model, node)
        return IntegerTensor(out, x.scale / hw, via=node.name) if hw else None
    if op == "ReduceSum":
        return IntegerTensor(out, x.scale, via=node.name)
    return None


def integer_scales(model) -> dict[str, IntegerTensor]:
    """Every tensor of ``model`` (sorted graph) known to be an integer times a scale."""
    known: dict[str, IntegerTensor] = {}
    iname = model.graph.input[0].name
    if model.get_tensor_datatype(iname).is_integer() and model.get_tensor_datatype(iname).name != "FLOAT32":
        known[iname] = IntegerTensor(iname, 1.0, via="input")
    for node in model.graph.node:
        t = _node_scale(model, node, known)
        if t is not None and t.scale != 0 and np.isfinite(t.scale):
            for out in node.output:  # DuplicateStreams: every copy
                known[out] = IntegerTensor(out, t.scale, t.bias, t.via)
    return known


@dataclass
class OutputPoint:
    """Where a graph's integers are read: ``tensor`` (its integers = (value - bias) / scale),
    and whether the graph's output is a label (TopK / LabelSelect) or a float tail follows."""

    tensor: IntegerTensor
    label_node: str | None      # TopK / LabelSelect whose index output is the label
    float_tail: list = field(default_factory=list)  # node names between the tensor and the output


def output_point(model) -> OutputPoint:
    """The last integer-valued tensor on the way to the graph output."""
    known = integer_scales(model)
    out = model.graph.output[0].name
    prod = {o: n for n in model.graph.node for o in n.output}
    label_node = None
    t, tail = out, []
    if t in prod and base_op(prod[t].op_type) in LABEL_OPS:
        label_node = prod[t].name
        t = prod[t].input[0]
    # walk back along the first non-constant input until an integer tensor
    while t not in known:
        node = prod.get(t)
        if node is None:
            raise UserError(f"no integer-valued tensor on the way to the output {out} of {model.graph.name!r}: "
                            "the graph's output does not depend on a quantized activation")
        tail.append(node.name)
        t = next((i for i in node.input if model.get_initializer(i) is None), None)
        if t is None:
            raise UserError(f"{node.name} ({node.op_type}) takes constants only")
    return OutputPoint(known[t], label_node, tail[::-1])


def _unscaled(v: np.ndarray, t: IntegerTensor, what: str) -> np.ndarray:
    """value / scale (the scale as the float32 the graph holds), checked integral."""
    return as_integers(v / np.float64(np.float32(t.scale)) if t.scale != 1.0 else v, what)


def read_integers(model, ctx: dict, point: OutputPoint, index: int = 0) -> np.ndarray:
    """The integers at ``point`` of image ``index`` of an executed context, flattened in NHWC
    order (the accelerator's stream order) with unit axes dropped."""
    t = point.tensor
    v = np.asarray(ctx[t.name], dtype=np.float64)[index:index + 1]
    if t.bias is not None:
        b = np.asarray(model.get_initializer(t.bias), dtype=np.float64)
        v = v - (b.reshape((-1,) + (1,) * (v.ndim - 2)) if v.ndim > 2 else b)
    ints = _unscaled(v, t, f"{t.name} / scale")
    layout = model.get_tensor_layout(t.name)
    nchw = ints.ndim == 4 and not (layout is not None and list(layout) == ["N", "H", "W", "C"])
    return (ints.transpose(0, 2, 3, 1) if nchw else ints).reshape(-1)


def label_of(ctx: dict, model, point: OutputPoint, ints: np.ndarray, index: int = 0) -> int:
    """The label: the label node's output; else the first arg max of the integers where the
    output is they times a positive scale; else the arg max of the float output."""
    out = np.asarray(ctx[model.graph.output[0].name])[index].reshape(-1)
    if point.label_node is not None:
        return int(out[0])
    if not point.float_tail and point.tensor.bias is None and point.tensor.scale > 0:
        return int(np.argmax(ints))  # the output is the integers times a positive scale
    return int(np.argmax(out))


# ----------------------------------------------------------------------------------------------
# The reference run
# ----------------------------------------------------------------------------------------------

@dataclass
class ImageRef:
    label: int
    integers: np.ndarray                      # at the output point, NHWC order, flat
    quantizers: list = field(default_factory=list)  # every activation quantizer's integers (NCHW)


@dataclass
class QonnxReference:
    """The QONNX model executed by qonnx on float inputs; what each image gives."""

    model: object
    point: OutputPoint
    images: list
    input_scale: float  # of the input quantizer: the float input is the integer input * input_scale

    @property
    def description(self) -> str:
        t = self.point.tensor
        what = f"{t.name} (output of {t.via})"
        if t.bias is not None:
            what += f" minus its bias {t.bias}"
        what += f" / {t.scale:.6g}"
        tail = (f"; float tail after it: {', '.join(self.point.float_tail)}" if self.point.float_tail else "")
        return what + tail


def quantizer_integers(model, ctx: dict, known: dict, index: int = 0) -> list[np.ndarray]:
    """The integers of every activation quantizer (Quant / BipolarQuant of a non-constant) of
    image ``index`` in ``ctx``."""
    out = []
    for node in model.graph.node:
        if node.op_type in ("Quant", "BipolarQuant") and node.output[0] in known:
            t = known[node.output[0]]
            v = np.asarray(ctx[t.name], dtype=np.float64)[index:index + 1]
            out.append(_unscaled(v, t, node.name))
    return out


BATCH = 100            # images per qonnx execution (qonnx's ChangeBatchSize)
QUANTIZER_IMAGES = 100  # images whose every quantizer output is kept (to name a divergent node)


def run_qonnx_reference(model, x_float: np.ndarray, input_scale: float, progress: bool = False) -> QonnxReference:
    """Execute the QONNX model (qonnx's executor) on the float inputs, BATCH images at a time,
    and read each image's label and integers."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes
    from tqdm import tqdm

    point = output_point(model)
    known = integer_scales(model)
    refs, batched = [], {}
    with tqdm(total=len(x_float), desc="QONNX reference", unit="img", disable=not progress) as bar:
        for start in range(0, len(x_float), BATCH):
            xb = x_float[start:start + BATCH].astype(np.float32)
            if len(xb) not in batched:
                m = ModelWrapper(model.model, make_deepcopy=True).transform(ChangeBatchSize(len(xb)))
                batched[len(xb)] = m.transform(InferShapes())
            m = batched[len(xb)]
            ctx = execute_onnx(m, {m.graph.input[0].name: xb}, return_full_exec_context=True)
            for k in range(len(xb)):
                ints = read_integers(m, ctx, point, k)
                quant = quantizer_integers(m, ctx, known, k) if start + k < QUANTIZER_IMAGES else []
                refs.append(ImageRef(label_of(ctx, m, point, ints, k), ints, quant))
            bar.update(len(xb))
    return QonnxReference(model, point, refs, input_scale)
