"""Verilator simulation speed (cycles/s) and shared-library build time, on this machine.

    python bench/hw_sim.py [--vectors 200000] [--netlist-vectors 20000] [--images 30]

1. one matrix unit: MVAUBipolar_rtl, 288 x 64 bipolar weights, UINT2 inputs, PE 16 / SIMD 36
   (WRN-8-2's 3x3 conv layers in stage 2), raw accumulators out, no gaps;
   the same unit as the netlist yosys ``synth_xilinx`` makes of it, simulated with the Xilinx
   primitive models (hw.sim.netlist; fewer vectors: --netlist-vectors), outputs checked the same;
2. the whole default accelerator (train/pretrained/fmnist_wrn8_3_w1a2.onnx, pynq-z2) on real
   test images, every stream between layers monitored (as `make verify` runs it).
Prints a table and writes bench/results/hw_sim.{json,md}.
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from common.atomic import write_json, write_text  # noqa: E402
from train import DEFAULT_MODEL  # noqa: E402

RESULTS = ROOT / "bench" / "results"


def single_mvu(vectors: int, work: Path, netlist: bool = False) -> dict:
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    import hw.custom_op  # noqa: F401
    from hw.sim import pack_words, unpack_words
    from hw.sim.node import ensure_hdl, node_design

    mw, mh, pe, simd = 288, 64, 16, 36
    node = helper.make_node(
        "MVAUBipolar_rtl", ["inp", "weights"], ["outp"], domain="finn.custom_op.fpgadataflow.rtl", name="MVU_bench",
        backend="fpgadataflow", MW=mw, MH=mh, PE=pe, SIMD=simd, inputDataType="UINT2", weightDataType="BIPOLAR",
        outputDataType="INT32", noActivation=1, numInputVectors=[vectors], mem_mode="internal_decoupled")
    graph = helper.make_graph([node], "mvu", [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [vectors, mw])],
                              [helper.make_tensor_value_info("outp", TensorProto.FLOAT, [vectors, mh])])
    model = ModelWrapper(qonnx_make_model(graph))
    rng = np.random.default_rng(0)
    model.set_initializer("weights", rng.choice([-1.0, 1.0], size=(mw, mh)).astype(np.float32))
    model.set_tensor_datatype("weights", DataType["BIPOLAR"])
    model.set_tensor_datatype("inp", DataType["UINT2"])
    op = ensure_hdl(model, model.graph.node[0], code_dir=str(work / "mvu"))
    synth_s = None
    if netlist:
        from hw.sim.netlist import node_netlist

        t0 = time.perf_counter()
        design, synth = node_netlist(op, work / "synth" / "mvu", cache_dir=work / "cache")
        synth_s = time.perf_counter() - t0
    else:
        design = node_design(op, cache_dir=work / "cache")
    t0 = time.perf_counter()
    design.build()
    build_s = time.perf_counter() - t0
    x = rng.integers(0, 4, (vectors, mw))
    words = pack_words(x.reshape(-1, simd), 2, design.inputs[0].width)
    t0 = time.perf_counter()  # the simulation alone: packing numpy beats is not the simulator's speed
    r = design.run({"in0_V": words}, {"out0_V": vectors * (mh // pe)})
    sim_s = time.perf_counter() - t0
    y = unpack_words(r.outputs["out0_V"], 32, pe, True).reshape(vectors, mh)
    assert np.array_equal(y, x @ model.get_initializer("weights").astype(np.int64)), "MVU output differs from numpy"
    what = f"MVAUBipolar_rtl {mw}x{mh}, PE {pe}, SIMD {simd}, UINT2"
    if netlist:
        what += f", yosys netlist ({synth.LUT:,} LUT, {synth.FF:,} FF; yosys {synth_s:.0f} s with write_verilog)"
    return {"what": what, "build_s": round(build_s, 1), "cycles": r.cycles, "sim_s": round(sim_s, 2),
            "cycles_per_s": round(r.cycles / sim_s), "synth_s": None if synth_s is None else round(synth_s, 1)}


def accelerator(images: int, work: Path) -> dict:
    from flows.verify_rtl import verify_accelerator

    r = verify_accelerator(DEFAULT_MODEL, "pynq-z2", work, images=images)
    t = r["timings"]
    return {"what": f"default accelerator {images} images, {len(r['layers'])} internal streams monitored",
            "build_s": t["build_sized_s"], "cycles": t["sim_nogap_cycles"], "sim_s": t["sim_nogap_s"],
            "cycles_per_s": t["sim_cycles_per_s"], "passed": r["passed"]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--vectors", type=int, default=200_000)
    p.add_argument("--netlist-vectors", type=int, default=20_000)
    p.add_argument("--images", type=int, default=30)
    args = p.parse_args(argv)
    from flows.finn_env import import_finn

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        import_finn(work / ".finn")
        rows = [single_mvu(args.vectors, work), single_mvu(args.netlist_vectors, work, netlist=True),
                accelerator(args.images, work / "acc")]
    result = {"machine": platform.processor() or platform.machine(), "rows": rows}
    lines = ["| design | Verilator build (s) | simulated cycles | wall (s) | cycles/s |", "|---|---:|---:|---:|---:|"]
    lines += [f"| {r['what']} | {r['build_s']} | {r['cycles']:,} | {r['sim_s']} | {r['cycles_per_s']:,} |" for r in rows]
    print("\n".join(lines))
    RESULTS.mkdir(parents=True, exist_ok=True)
    write_json(RESULTS / "hw_sim.json", result)
    write_text(RESULTS / "hw_sim.md", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
