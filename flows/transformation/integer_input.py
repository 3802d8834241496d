"""The accelerator's input: the raw integers of the model's input quantizer, in NHWC."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.data_layout import NHWC
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation

from flows.graph import LoweringError, bypass, initializer, node_attrs


class IntegerInput(Transformation):
    """QONNX level: the input quantizer becomes a constant scale; the input is the raw integer.

    Matches the graph input feeding exactly one unsigned, zero-point-0 ``Quant`` node with a
    scalar constant scale s and b bits. For inputs p * s with p an integer in [0, 2^b - 1] that
    quantizer is the identity, so Quant(x) is replaced by Mul(p, s) and the graph input is
    annotated UINTb: the accelerator then takes the raw pixels. An input declared integer is
    left alone: its values are not p * s, and streamlining folds that quantizer into thresholds.
    """

    def apply(self, model):
        iname = model.graph.input[0].name
        if model.get_tensor_datatype(iname) != DataType["FLOAT32"]:
            return model, False
        consumers = model.find_consumers(iname)
        if len(consumers) != 1 or consumers[0].op_type != "Quant":
            return model, False
        q = consumers[0]
        scale, zp, bits = (initializer(model, t) for t in q.input[1:4])
        attrs = node_attrs(q)
        if scale is None or zp is None or bits is None or scale.size != 1 or np.any(zp != 0):
            raise LoweringError(q, "the input quantizer needs a constant scalar scale and zero point 0")
        if attrs.get("signed", 1) or attrs.get("narrow", 0):
            raise LoweringError(q, "the input quantizer must be unsigned and not narrow")
        bits = int(bits)
        mul = helper.make_node("Mul", [iname, q.input[1]], [q.output[0]], name=q.name + "_input_scale")
        idx = list(model.graph.node).index(q)
        model.graph.node.remove(q)
        model.graph.node.insert(idx, mul)
        model.set_tensor_datatype(iname, DataType[f"UINT{bits}"])
        return model, False


class InputToNHWC(Transformation):
    """Drop the NCHW->NHWC Transpose at the graph input: the accelerator takes NHWC pixels.

    The Transpose may follow a MultiThreshold on the input (the input quantizer of a model whose
    input is declared integer, FINN's recipe): that one then thresholds in NHWC (its channel
    axis moves last, its thresholds stay per channel)."""

    def apply(self, model):
        from qonnx.custom_op.registry import getCustomOp

        inp = model.graph.input[0]
        consumers = model.find_consumers(inp.name)
        if len(consumers) != 1:
            return model, False
        mt = consumers[0] if consumers[0].op_type == "MultiThreshold" else None
        if mt is not None:
            consumers = model.find_consumers(mt.output[0]) or []
            if len(consumers) != 1 or getCustomOp(mt).get_nodeattr("data_layout") != "NCHW":
                return model, False
        if consumers[0].op_type != "Transpose":
            return model, False
        t = consumers[0]
        perm = [helper.get_attribute_value(a) for a in t.attribute if a.name == "perm"]
        if not perm or list(perm[0]) != [0, 2, 3, 1]:
            return model, False
        dt = model.get_tensor_datatype(inp.name)
        nhwc = model.get_tensor_shape(t.output[0])
        if mt is not None:  # input -> MultiThreshold (NHWC) -> what the Transpose fed
            getCustomOp(mt).set_nodeattr("data_layout", "NHWC")
            out_dt = model.get_tensor_datatype(mt.output[0])
            mt.output[0] = t.output[0]
            model.graph.node.remove(t)
            model.set_tensor_datatype(t.output[0], out_dt)
            model.set_tensor_layout(t.output[0], NHWC)
        else:
            bypass(model, t, inp.name)
        model.set_tensor_shape(inp.name, nhwc)
        model.set_tensor_datatype(inp.name, dt)
        model.set_tensor_layout(inp.name, NHWC)
        return model, True


class InputFlattenToHost(Transformation):
    """A Reshape / Flatten of the graph input to N x K (a fully connected network's flatten of
    its image): the host passes the image flattened, the accelerator takes the K-vector. The
    flatten keeps the element order, so the host's ``x.reshape(N, -1)`` is the same."""

    def apply(self, model):
        inp = model.graph.input[0]
        consumers = model.find_consumers(inp.name) or []
        if len(consumers) != 1 or consumers[0].op_type not in ("Reshape", "Flatten"):
            return model, False
        r = consumers[0]
        shape = model.get_tensor_shape(r.output[0])
        if shape is None or len(shape) != 2:
            return model, False
        dt = model.get_tensor_datatype(inp.name)
        bypass(model, r, inp.name)
        model.set_tensor_shape(inp.name, shape)
        model.set_tensor_datatype(inp.name, dt)
        return model, True
