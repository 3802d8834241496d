"""Issue 36 in the flow: a user's ONNX model, folding file or checkpoint beside the model reaches
nothing outside the build (flows.model_file, flows.folding, flows.verify)."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from common.errors import UserError
from flows.model_file import read_onnx
from wrn1bit.cli import main

PRETRAINED = Path(__file__).resolve().parents[2] / "train" / "pretrained" / "fmnist_wrn8_3_w1a2"
WEIGHT = np.arange(4, dtype=np.float32)


def tiny_model(path: Path, node_name="add", graph_name="g", op_type="Add", domain="", location=None,
               tensor="w", **attrs) -> Path:
    """x + w; with ``location``, w's bytes are an external file at that path (relative to the model)."""
    w = numpy_helper.from_array(WEIGHT, tensor)
    if location is not None:
        w.data_location = TensorProto.EXTERNAL
        w.ClearField("raw_data")
        for k, v in (("location", location), ("offset", "0"), ("length", str(WEIGHT.nbytes))):
            e = w.external_data.add()
            e.key, e.value = k, v
    node = helper.make_node(op_type, ["x", tensor], ["y"], name=node_name, domain=domain, **attrs)
    g = helper.make_graph([node], graph_name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(helper.make_model(g).SerializeToString())
    return path


def weight_of(proto) -> np.ndarray:
    return numpy_helper.to_array(proto.graph.initializer[0])


def test_external_data_beside_the_model_loads(tmp_path):
    (tmp_path / "m" / "data").mkdir(parents=True)
    (tmp_path / "m" / "data" / "w.bin").write_bytes(WEIGHT.tobytes())
    assert np.array_equal(weight_of(read_onnx(tiny_model(tmp_path / "m" / "model.onnx", location="data/w.bin"))),
                          WEIGHT)


@pytest.mark.parametrize("location", ["ABS", "../secret.bin", "data/../../secret.bin", "link.bin", ""])
def test_external_data_outside_the_models_folder_is_refused(tmp_path, location):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(WEIGHT.tobytes())
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "link.bin").symlink_to(secret)  # inside the folder by name, outside in fact
    location = str(secret) if location == "ABS" else location
    path = tiny_model(tmp_path / "m" / "model.onnx", location=location)
    with pytest.raises(UserError, match=rf"^refused to read model {re.escape(str(path))}: tensor 'w' keeps its "
                                        rf"data in {re.escape(repr(location))}, not a file inside the model's folder"):
        read_onnx(path)


@pytest.mark.parametrize("where,name", [
    ("graph_name", "g'\nmodule evil; initial $system(\"touch pwned\"); endmodule\n//"),
    ("node_name", "add\r\n"),
    ("tensor", "w\x00"),
])
def test_names_with_line_breaks_or_control_characters_are_refused(tmp_path, where, name):
    path = tiny_model(tmp_path / "model.onnx", **{where: name})
    with pytest.raises(UserError, match=r"holds a line break or control character") as e:
        read_onnx(path)
    assert "\n" not in str(e.value) and "\r" not in str(e.value)


@pytest.mark.parametrize("op_type,domain", [("Add/../../x", ""), ("Add;evil", ""), ("Add", "a b"),
                                           ("Add", "../qonnx")])
def test_op_types_and_domains_must_be_identifiers(tmp_path, op_type, domain):
    path = tiny_model(tmp_path / "model.onnx", op_type=op_type, domain=domain)
    with pytest.raises(UserError, match=r"an op type must be an identifier"):
        read_onnx(path)


@pytest.mark.parametrize("domain", ["finn.custom_op.fpgadataflow", "finn.custom_op.fpgadataflow.rtl"])
def test_finn_hardware_layers_in_the_given_model_are_refused(tmp_path, domain):
    path = tiny_model(tmp_path / "model.onnx", op_type="MVAU_rtl", domain=domain,
                      code_gen_dir_ipgen=str(tmp_path / "elsewhere"))
    with pytest.raises(UserError, match=r"is a FINN hardware layer .*give the QONNX model"):
        read_onnx(path)


def test_hostile_node_names_never_reach_a_path_or_hdl(tmp_path):
    """Printable names pass the check; the lowering's first tidy renames every node and tensor
    before any file is written, so none of them becomes a folder or a Verilog name."""
    from qonnx.core.modelwrapper import ModelWrapper

    from flows.streamline import tidy

    nasty = "../../etc/x y'\"`; module evil(); endmodule //"
    path = tiny_model(tmp_path / "model.onnx", node_name=nasty, tensor=nasty + "_w")
    model = tidy(ModelWrapper(read_onnx(path)))
    ident = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
    names = [n.name for n in model.graph.node] + [t for n in model.graph.node for t in [*n.input, *n.output]]
    assert names and all(ident.match(n) for n in names), names


@pytest.mark.parametrize("command", ["build", "verify", "verify-flow"])
def test_the_commands_refuse_such_a_model_in_one_line(tmp_path, capsys, command):
    (tmp_path / "secret.bin").write_bytes(WEIGHT.tobytes())
    path = tiny_model(tmp_path / "m" / "model.onnx", location="../secret.bin")
    assert main([command, "--model", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: refused to read model {path}: tensor 'w'")


class Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.fixture
def model_copy(tmp_path):
    """The committed model in a folder of its own, with no checkpoint beside it."""
    path = tmp_path / "m" / "model.onnx"
    path.parent.mkdir()
    shutil.copy(PRETRAINED.with_suffix(".onnx"), path)
    return path


@pytest.mark.parametrize("command", ["verify", "verify-flow"])
def test_verify_refuses_an_unsafe_checkpoint_given_to_it(tmp_path, model_copy, capsys, command):
    evil = tmp_path / "evil.pt"
    torch.save({"format": "wrn1bit-checkpoint/1", "payload": Payload(tmp_path / "pwned")}, evil)
    assert main([command, "--model", str(model_copy), "--checkpoint", str(evil), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: refused to load {evil}: it asks for posix.system")
    assert not (tmp_path / "pwned").exists()


def test_an_unsafe_checkpoint_beside_the_model_is_not_used(tmp_path, model_copy, capsys):
    from flows.verify import reference_checkpoint

    beside = model_copy.with_suffix(".pt")
    torch.save({"format": "wrn1bit-checkpoint/1", "payload": Payload(tmp_path / "pwned")}, beside)
    assert reference_checkpoint(model_copy, None) == (None, None)
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"[verify] model.pt beside the model not used, no Brevitas comparison: refused to load {beside}: "
                   "it asks for posix.system while loading, which could run code; a checkpoint of this trainer "
                   "holds only tensors and plain data"]
    assert not (tmp_path / "pwned").exists()


def test_verification_goes_on_without_the_brevitas_comparison(tmp_path, model_copy, capsys):
    from flows.verify import prepare_verification

    torch.save({"payload": Payload(tmp_path / "pwned")}, model_copy.with_suffix(".pt"))
    np.save(tmp_path / "x.npy", np.zeros((2, 1, 28, 28), np.float32))
    v = prepare_verification(model_copy, 2, inputs=tmp_path / "x.npy")
    assert v.checkpoint is None and v.brevitas is None and v.images == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1
    assert not (tmp_path / "pwned").exists()


def test_this_trainers_checkpoint_beside_the_model_is_used(model_copy, capsys):
    from flows.verify import reference_checkpoint

    shutil.copy(PRETRAINED.with_suffix(".pt"), model_copy.with_suffix(".pt"))
    path, ckpt = reference_checkpoint(model_copy, None)
    assert path == model_copy.with_suffix(".pt") and ckpt["model"] and capsys.readouterr().err == ""
    assert reference_checkpoint(model_copy.with_name("other.onnx"), None) == (None, None)


@pytest.fixture
def hardware_layer(tmp_path):
    """A one-node dataflow graph, as the folding file meets it."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    from flows.finn_env import import_finn

    import_finn(tmp_path / ".finn")
    node = helper.make_node("Thresholding_rtl", ["x", "t"], ["y"], domain="finn.custom_op.fpgadataflow.rtl",
                            backend="fpgadataflow", NumChannels=4, PE=1, numSteps=3, inputDataType="INT8",
                            weightDataType="INT9", outputDataType="UINT2", name="Thresholding_rtl_0")
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])])
    return ModelWrapper(qonnx_make_model(g))


@pytest.mark.parametrize("config", [
    {"Thresholding_rtl_0": {"PE": 2, "code_gen_dir_ipgen": "../../elsewhere"}},
    {"Thresholding_rtl_0": {"gen_top_module": "evil; initial $finish"}},
    {"Defaults": {"rtlsim_so": ["../../evil.so", ["Thresholding_rtl"]]}},
])
def test_a_folding_file_sets_no_paths_or_module_names(tmp_path, hardware_layer, config):
    from flows.folding import _check_folding_file

    path = tmp_path / "folding.json"
    path.write_text(json.dumps(config))
    with pytest.raises(UserError, match=r"is not a folding setting \(a free-form string, which may name a file"):
        _check_folding_file(path, hardware_layer)
    path.write_text(json.dumps({"Thresholding_rtl_0": {"PE": 2, "ram_style": "distributed"}}))
    assert _check_folding_file(path, hardware_layer)["Thresholding_rtl_0"]["PE"] == 2
