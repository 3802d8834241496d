"""Pools in integers: a spatial mean as a sum (and its 1 / (H x W) as a scale), the sum as
FINN's GlobalAccPool, ResNetE's average-pool shortcut as a strided binary conv."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_datatypes import InferDataTypes
from qonnx.transformation.infer_shapes import InferShapes

from flows.graph import LoweringError, initializer, node_attrs
from flows.transformation.binary import is_bipolar


class ReduceMeanToGlobalAveragePool(Transformation):
    """torch's dynamo exports adaptive_avg_pool2d(x, 1) as ReduceMean over H, W (keepdims)."""

    def apply(self, model):
        for node in model.graph.node:
            if node.op_type != "ReduceMean" or len(node.input) < 2:
                continue
            axes = initializer(model, node.input[1])
            shape = model.get_tensor_shape(node.input[0])
            keep = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "keepdims"), 1)
            if axes is None or shape is None or len(shape) != 4 or not keep:
                continue
            if sorted(int(a) % 4 for a in axes) != [2, 3]:
                continue
            node.op_type = "GlobalAveragePool"
            del node.input[1:]
            del node.attribute[:]
        return model, False


class GlobalAveragePoolToSum(Transformation):
    """GlobalAveragePool(x) of integer x -> ReduceSum(x) * (1 / (H * W)).

    Keeps the pooled value an exact integer (the sum), with the 1/(H*W) as a scalar Mul that
    streamlining moves on into the TopK.
    """

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if node.op_type != "GlobalAveragePool":
                continue
            if not model.get_tensor_datatype(node.input[0]).is_integer():
                continue  # a float average: part of the float tail (flows.float_tail), on the host
            n, c, h, w = model.get_tensor_shape(node.input[0])
            axes = model.make_new_valueinfo_name()
            model.set_initializer(axes, np.array([2, 3], dtype=np.int64))
            summed = model.make_new_valueinfo_name()
            rsum = helper.make_node("ReduceSum", [node.input[0], axes], [summed], keepdims=1,
                                    name=node.name + "_sum")
            inv = model.make_new_valueinfo_name()
            model.set_initializer(inv, np.array(1.0 / (h * w), dtype=np.float32))
            mul = helper.make_node("Mul", [summed, inv], [node.output[0]], name=node.name + "_mean")
            graph.node.remove(node)
            graph.node.insert(idx, mul)
            graph.node.insert(idx, rsum)
            idt = model.get_tensor_datatype(node.input[0])
            lo, hi = h * w * idt.min(), h * w * idt.max()
            model.set_tensor_datatype(summed, DataType.get_smallest_possible(lo if -lo > hi else hi))
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return model, True
        return model, False


class InferGlobalAccPoolFromReduceSum(Transformation):
    """Transpose(NHWC->NCHW) -> ReduceSum over H, W  ==>  GlobalAccPool on the NHWC stream."""

    def apply(self, model):
        graph = model.graph
        for idx, node in enumerate(graph.node):
            if node.op_type != "ReduceSum":
                continue
            axes = initializer(model, node.input[1]) if len(node.input) > 1 else None
            if axes is None or sorted(int(a) % 4 for a in axes) != [2, 3]:
                raise LoweringError(node, "only a sum over the spatial axes (2, 3) maps to GlobalAccPool")
            t = model.find_producer(node.input[0])
            perm = [helper.get_attribute_value(a) for a in t.attribute if a.name == "perm"] if t else []
            if t is None or t.op_type != "Transpose" or list(perm[0]) != [0, 3, 1, 2]:
                raise LoweringError(node, "expected an NHWC->NCHW Transpose before the spatial sum")
            idt = model.get_tensor_datatype(t.input[0])
            if not idt.is_integer():
                raise LoweringError(node, f"input is {idt.name}, not an integer")
            n, h, w, c = model.get_tensor_shape(t.input[0])
            out = model.make_new_valueinfo_name()
            model.set_tensor_shape(out, [n, 1, 1, c])
            pool = helper.make_node("GlobalAccPool", [t.input[0]], [out], domain="finn.custom_op.fpgadataflow",
                                    backend="fpgadataflow", NumChannels=c, PE=1, inputDataType=idt.name,
                                    numInputVectors=[n, h, w], name="GlobalAccPool_" + node.name)
            for consumer in model.find_consumers(node.output[0]):
                if consumer.op_type != "Reshape" or model.get_tensor_shape(consumer.output[0]) != [n, c]:
                    raise LoweringError(consumer, "expected a Reshape to (N, classes) after the pool")
                consumer.input[0] = out
            for o in graph.output:  # the sum is the accelerator's output (a float tail follows)
                if o.name == node.output[0]:
                    o.CopyFrom(next(v for v in graph.value_info if v.name == out))
                    graph.value_info.remove(next(v for v in graph.value_info if v.name == out))
            graph.node.insert(idx, pool)
            graph.node.remove(node)
            if not model.find_consumers(t.output[0]):
                graph.node.remove(t)
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return model, True
        return model, False


class AvgPoolConvToStridedConv(Transformation):
    """AveragePool 2x2/2 -> 1x1 conv (+-1 weights)  ==>  2x2/2 conv with the weights on every
    tap, then Mul 1/4 (ResNetE's downsampling shortcut).

    Exact: sum_c w_oc * (1/4) sum_(2x2) x_c = (1/4) sum_(c, 2x2) w_oc x_c. The conv keeps +-1
    weights (an MVAU after an Im2Col of 2x2 windows, stride 2), the 1/4 is a scalar that
    streamlining moves into the next thresholds.
    """

    def apply(self, model):
        graph = model.graph
        for node in list(graph.node):
            if node.op_type != "AveragePool":
                continue
            attrs = node_attrs(node)
            consumers = model.find_consumers(node.output[0]) or []
            if (list(attrs.get("kernel_shape", [])) != [2, 2] or list(attrs.get("strides", [])) != [2, 2]
                    or any(attrs.get("pads", [0])) or attrs.get("ceil_mode", 0) or len(consumers) != 1
                    or consumers[0].op_type != "Conv"):
                continue
            conv = consumers[0]
            w = model.get_initializer(conv.input[1])
            cattrs = node_attrs(conv)
            if (w is None or w.shape[2:] != (1, 1) or len(conv.input) > 2 or cattrs.get("group", 1) != 1
                    or any(s != 1 for s in cattrs.get("strides", [1, 1])) or any(cattrs.get("pads", [0]))):
                continue
            if not is_bipolar(w):
                raise LoweringError(conv, "full-precision conv (float weights, e.g. ResNetE's model.fp_downsample: "
                                    "true): this flow lowers 1-bit convs only")
            model.set_initializer(conv.input[1], np.tile(w, (1, 1, 2, 2)))
            for a in list(conv.attribute):
                conv.attribute.remove(a)
            conv.attribute.extend([helper.make_attribute("kernel_shape", [2, 2]),
                                   helper.make_attribute("strides", [2, 2]),
                                   helper.make_attribute("pads", [0, 0, 0, 0]),
                                   helper.make_attribute("dilations", [1, 1]),
                                   helper.make_attribute("group", 1)])
            quarter = model.make_new_valueinfo_name()
            model.set_initializer(quarter, np.array(0.25, dtype=np.float32))
            out = conv.output[0]
            mid = model.make_new_valueinfo_name()
            conv.output[0] = mid
            conv.input[0] = node.input[0]
            mul = helper.make_node("Mul", [mid, quarter], [out], name=conv.name + "_avg")
            graph.node.insert(list(graph.node).index(conv) + 1, mul)
            graph.node.remove(node)
            model = model.transform(InferShapes())
            model = model.transform(InferDataTypes())
            return model, True
        return model, False
