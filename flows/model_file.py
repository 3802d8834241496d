"""Reading a user's ONNX model: what in the file could reach outside the build is refused first.

An ONNX file is data, but some of its fields name things the flow would act on:

- External data. A tensor may keep its bytes in another file, named by a path in the model
  (``location``). A model from someone else could name ``~/.ssh/id_rsa`` or
  ``../../secret``, and loading it would read that file into the model (and the build's
  intermediate models would carry a copy). Only files inside the model's own folder are read.
- Names. Before any name becomes a folder (FINN's code generation, hw.stitch) or a Verilog module
  or instance name, the flow renames every node ``<op_type>_<n>`` and every tensor after its node
  (qonnx's GiveUniqueNodeNames and GiveReadableTensorNames in flows.streamline.tidy, which
  step_wrn_tidy runs before any file is written). So a node name with ``/``, ``..``, quotes or
  Verilog in it never reaches a path or HDL, but its op type does: an op type must be a plain
  identifier, as every ONNX / QONNX op's is, and its domain dotted identifiers. The graph's name
  is written as it is into a comment of the stitched Verilog, where a line break would end the
  comment and start code: every name in the file must be printable (no line break, no control
  character).
- FINN hardware layers (domain finn.custom_op.fpgadataflow and below). Their attributes name the
  folders FINN generates code into and the files it loads (code_gen_dir_ipgen, rtlsim_so, a
  partition's model). The flow makes these nodes itself from the QONNX model; a file that brings
  its own is refused.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from common.errors import UserError

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
DOMAIN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*)?\Z")
HARDWARE_DOMAIN = "finn.custom_op.fpgadataflow"


def read_onnx(path: str | Path):
    """The ModelProto in ``path``, external data loaded from the model's folder only; one
    UserError line for a file that is not ONNX or that the checks above refuse."""
    import onnx
    from onnx.external_data_helper import load_external_data_for_model, uses_external_data

    path = Path(path)
    try:
        proto = onnx.load(str(path), load_external_data=False)  # nothing outside the file is read yet
    except Exception as e:  # onnx raises DecodeError, ValueError, ... for a foreign or cut file
        raise UserError(f"cannot read model {path}: not a valid ONNX file ({type(e).__name__})") from None
    check_names(proto, path)
    external = [t for t in tensors(proto) if uses_external_data(t)]
    for t in external:
        check_external_location(t, path)
    if external:
        try:
            load_external_data_for_model(proto, str(path.parent))
        except Exception as e:  # a missing or short data file
            raise UserError(f"cannot read the external data of model {path} ({type(e).__name__}: "
                            f"{str(e).splitlines()[0] if str(e) else 'no message'})") from None
    return proto


def _subgraphs(nodes):
    for node in nodes:
        for a in node.attribute:
            for g in [a.g] * a.HasField("g") + list(a.graphs):
                yield g
                yield from _subgraphs(g.node)


def _containers(proto):
    """Everything in the model that holds nodes: its graph, every subgraph (If / Loop / Scan
    bodies) and every local function."""
    yield proto.graph
    yield from _subgraphs(proto.graph.node)
    for f in proto.functions:
        yield f
        yield from _subgraphs(f.node)


def tensors(proto):
    """Every TensorProto in the model: initializers and those held in node attributes."""
    for c in _containers(proto):
        yield from getattr(c, "initializer", ())  # a function has none
        sparse = list(getattr(c, "sparse_initializer", ()))
        for node in c.node:
            for a in node.attribute:
                yield from [a.t] * a.HasField("t") + list(a.tensors)
                sparse += [a.sparse_tensor] * a.HasField("sparse_tensor") + list(a.sparse_tensors)
        for s in sparse:
            yield from (s.values, s.indices)


def check_external_location(tensor, model_path: Path) -> None:
    """The tensor's data file must lie inside the model's folder, also after following symlinks."""
    location = next((e.value for e in tensor.external_data if e.key == "location"), "")
    folder = model_path.parent.resolve()
    if (not location or os.path.isabs(location) or ".." in Path(location).parts or "\0" in location
            or not (folder / location).resolve().is_relative_to(folder)):
        raise UserError(f"refused to read model {model_path}: tensor {tensor.name!r} keeps its data in "
                        f"{location!r}, not a file inside the model's folder; external data must lie beside the model")


def _names(c):
    """(what, name) of every name in a graph or function."""
    yield "graph name", c.name
    for v in [*c.input, *c.output, *getattr(c, "value_info", ()), *getattr(c, "initializer", ())]:
        yield "tensor name", v if isinstance(v, str) else v.name  # a function lists its inputs as strings
    for node in c.node:
        yield "node name", node.name
        for t in [*node.input, *node.output]:
            yield "tensor name", t


def check_names(proto, path: Path) -> None:
    """Every name printable, op types and domains identifiers, no FINN hardware layer."""
    for c in _containers(proto):
        for what, name in _names(c):
            if not name.isprintable():
                raise UserError(f"refused to read model {path}: {what} {name!r} holds a line break or "
                                "control character")
        for node in c.node:
            if not IDENTIFIER.match(node.op_type) or not DOMAIN.match(node.domain):
                raise UserError(f"refused to read model {path}: node {node.name!r} has op type {node.op_type!r} "
                                f"in domain {node.domain!r}; an op type must be an identifier (letters, digits, _) "
                                "and a domain dotted identifiers")
            if node.domain == HARDWARE_DOMAIN or node.domain.startswith(HARDWARE_DOMAIN + "."):
                raise UserError(f"refused to read model {path}: node {node.name!r} ({node.op_type}) is a FINN "
                                f"hardware layer ({node.domain}); give the QONNX model: the build makes the "
                                "hardware layers itself, and their attributes name folders and files FINN uses")
