"""What the flow's graph code shares: the one error for a node that cannot be lowered, and
small lookups on ONNX graphs."""

from __future__ import annotations


class LoweringError(RuntimeError):
    """A node of the WRN graph could not be lowered to a FINN hardware layer."""

    def __init__(self, node, message: str):
        self.node_name, self.op_type = node.name, node.op_type
        super().__init__(f"{node.name} ({node.op_type}): {message}")


def lowering_message(model_path, e: LoweringError) -> str:
    """The one line `flows build` and every verify print for a model the flow cannot lower."""
    return f"cannot lower {model_path} to FINN hardware layers: {e}"


# Hardware layers allowed in the dataflow partition (generic names and their specializations).
HW_LAYERS = ("MVAU", "Thresholding", "ConvolutionInputGenerator", "FMPadding", "DuplicateStreams",
             "AddStreams", "ElementwiseAdd", "GlobalAccPool", "Pool", "LabelSelect", "StreamingConcat",
             "StreamingDataWidthConverter", "StreamingFIFO")


def base_op(op_type: str) -> str:
    """FINN's generic op type of a specialized layer (``MVAU_rtl`` -> ``MVAU``)."""
    for suffix in ("_hls", "_rtl"):
        if op_type.endswith(suffix):
            return op_type[: -len(suffix)]
    return op_type


def node_attrs(node) -> dict:
    """A node's attributes as Python values."""
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def initializer(model, name: str):
    """The constant behind a tensor name, or None."""
    return model.get_initializer(name)


def embed_model(model, prop: str, part) -> None:
    """Keep the ModelWrapper ``part`` in ``model``'s metadata under ``prop`` (one serialized ONNX
    model): it then travels with the model through the ``(model, cfg) -> model`` steps."""
    import base64

    model.set_metadata_prop(prop, base64.b64encode(part.model.SerializeToString()).decode())


def embedded_model(model, prop: str):
    """The ModelWrapper kept in ``model``'s metadata under ``prop``, or None."""
    import base64

    from onnx import ModelProto
    from qonnx.core.modelwrapper import ModelWrapper

    data = model.get_metadata_prop(prop)
    if not data:
        return None
    proto = ModelProto()
    proto.ParseFromString(base64.b64decode(data))
    return ModelWrapper(proto)


def bypass(model, node, source: str) -> None:
    """Remove ``node``; whatever took its first output takes ``source`` instead."""
    for n in model.find_consumers(node.output[0]) or []:
        for i, name in enumerate(n.input):
            if name == node.output[0]:
                n.input[i] = source
    model.graph.node.remove(node)
