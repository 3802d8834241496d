"""QONNX export of a trained 1-bit WRN, checked against the Brevitas model on real images.

The check executes the exported graph with qonnx's executor and demands, for every image,
the same predicted label and (for models with quantized class scores) the same integer
pre-scale outputs: sum over the pooled positions of the integer class scores, i.e. the value
the accelerator computes before the final scale. Every conv of the graph must hold exactly
two weight values, +-sqrt(2 / fan_in).

Usage: python -m train.export CHECKPOINT [--out model.onnx] [--images N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from train.atomic import atomic_path, write_json, write_text
from train.checkpoint import load_checkpoint, model_from_checkpoint
from train.errors import UserError
from train.quant import he_std

INTEGER_TOL = 0.05  # a float output counts as integer-valued if within this of an integer


def export_qonnx(model: torch.nn.Module, image_shape: tuple[int, int, int], path: Path) -> Path:
    """Export with Brevitas, then tidy the graph with qonnx (shapes, names, constant folding)."""
    from brevitas.export import export_qonnx as brevitas_export_qonnx
    from qonnx.util.cleanup import cleanup_model
    from qonnx.core.modelwrapper import ModelWrapper

    model = model.cpu().eval()
    with atomic_path(path) as tmp:
        brevitas_export_qonnx(model, args=torch.zeros(1, *image_shape), export_path=str(tmp))
        # torch's exporter may put the weights in an external "<file>.data"; qonnx's save
        # writes them back inline, so the .onnx is self-contained and the .data goes
        cleanup_model(ModelWrapper(str(tmp))).save(str(tmp))
        tmp.with_name(tmp.name + ".data").unlink(missing_ok=True)
    return path


def conv_weight_values(model_wrapper, context: dict) -> list[dict]:
    """For every Conv node: its distinct weight values and the expected +-sqrt(2/fan_in)."""
    rows = []
    for node in model_wrapper.graph.node:
        if node.op_type != "Conv":
            continue
        w = context.get(node.input[1])
        if w is None:
            w = model_wrapper.get_initializer(node.input[1])
        fan_in = int(np.prod(w.shape[1:]))
        values = np.unique(w)
        rows.append({"node": node.name, "shape": list(w.shape), "values": values.tolist(),
                     "expected": float(np.float32(he_std(fan_in))),
                     "ok": bool(len(values) == 2 and values[0] == -values[1]
                     and values[1] == np.float32(he_std(fan_in)))})
    return rows


def prescale_integers(outputs: np.ndarray, scale: float, positions: int) -> np.ndarray:
    """Pooled class scores -> integer sums of the quantized scores (before scale and 1/HW)."""
    return outputs.astype(np.float64) * positions / scale


def check_export(model, onnx_path: Path, images_uint8: torch.Tensor, labels: torch.Tensor | None = None) -> dict:
    """Run the Brevitas model and the QONNX graph on the same images and compare them."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.core.onnx_exec import execute_onnx
    from qonnx.transformation.change_batchsize import ChangeBatchSize
    from qonnx.transformation.infer_shapes import InferShapes

    x = images_uint8.float() / 255.0
    model = model.cpu().eval()
    with torch.no_grad():
        ref = model(x).numpy()
    mw = ModelWrapper(str(onnx_path)).transform(ChangeBatchSize(len(x))).transform(InferShapes())
    iname, oname = mw.graph.input[0].name, mw.graph.output[0].name
    ctx = execute_onnx(mw, {iname: x.numpy()}, return_full_exec_context=True)
    got = ctx[oname]
    weights = conv_weight_values(mw, ctx)
    report = {
        "onnx": str(onnx_path), "images": len(x),
        "labels_equal": int((ref.argmax(1) == got.argmax(1)).sum()),
        "conv_layers": len(weights), "conv_layers_two_values": int(sum(r["ok"] for r in weights)),
        "bad_conv_layers": [r for r in weights if not r["ok"]],
    }
    if labels is not None:
        report["top1_brevitas"] = float((ref.argmax(1) == labels.numpy()).mean())
        report["top1_qonnx"] = float((got.argmax(1) == labels.numpy()).mean())
    scale = model.head_scale()
    if scale is not None:
        positions = mw.get_tensor_shape(_pool_input(mw))[2:]
        hw = int(np.prod(positions))
        ref_i, got_i = prescale_integers(ref, scale, hw), prescale_integers(got, scale, hw)
        frac = max(np.abs(ref_i - np.rint(ref_i)).max(), np.abs(got_i - np.rint(got_i)).max())
        diff = np.abs(np.rint(ref_i).astype(np.int64) - np.rint(got_i).astype(np.int64))
        report.update({
            "integer_outputs": True, "integer_valued": bool(frac < INTEGER_TOL),
            "max_distance_from_integer": float(frac),
            "integers_equal": int((diff == 0).all(axis=1).sum()), "max_integer_diff": int(diff.max()),
            "head_scale": scale, "pooled_positions": hw,
        })
        exact = report["integer_valued"] and report["integers_equal"] == len(x)
    else:
        report["integer_outputs"] = False  # full-precision class scores: labels only
        report["max_abs_output_diff"] = float(np.abs(ref - got).max())
        exact = True
    report["passed"] = bool(exact and report["labels_equal"] == len(x)
                            and report["conv_layers_two_values"] == report["conv_layers"])
    return report


def _pool_input(mw) -> str:
    # torch's dynamo exporter writes the global average pool as ReduceMean over H, W
    pools = [n for n in mw.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    if len(pools) != 1:
        raise UserError(f"{mw.model.graph.name}: expected one global average pool, found {len(pools)}")
    return pools[0].input[0]


def markdown_report(r: dict) -> str:
    lines = [f"# QONNX export check: {'PASSED' if r['passed'] else 'FAILED'}", "",
             f"- graph: `{r['onnx']}`",
             f"- images: {r['images']} real test images",
             f"- labels equal (Brevitas vs QONNX executor): {r['labels_equal']} / {r['images']}",
             f"- conv layers with exactly two weight values +-sqrt(2/fan_in): "
             f"{r['conv_layers_two_values']} / {r['conv_layers']}"]
    if r["integer_outputs"]:
        lines += [f"- integer pre-scale outputs equal: {r['integers_equal']} / {r['images']} "
                  f"(max difference {r['max_integer_diff']}; max distance from an integer "
                  f"{r['max_distance_from_integer']:.2e})"]
    else:
        lines += [f"- class scores are full precision; max |difference| {r['max_abs_output_diff']:.2e}"]
    if "top1_brevitas" in r:
        lines += [f"- top-1 on these images: Brevitas {100 * r['top1_brevitas']:.2f}%, "
                  f"QONNX {100 * r['top1_qonnx']:.2f}%"]
    return "\n".join(lines) + "\n"


def export_checkpoint(ckpt_path: Path, out: Path | None = None, images: int = 200, ds=None) -> dict:
    ckpt = load_checkpoint(ckpt_path)
    if not ckpt["model_config"].get("binary_weights"):
        raise UserError(f"{ckpt_path} is not a 1-bit-weight model (it was trained with full-precision "
                        "weights, model.binary_weights: false); only 1-bit models are exported")
    model = model_from_checkpoint(ckpt)
    if ds is None:
        from train.data import load_dataset

        ds = load_dataset(ckpt["config"]["data"], ckpt["config"]["seed"])
    out = out or Path(ckpt_path).with_name("model.onnx")
    export_qonnx(model, ds.image_shape, out)
    n = min(images, len(ds.test_y))
    report = check_export(model, out, ds.test_x[:n], ds.test_y[:n])
    report["checkpoint"] = str(ckpt_path)
    write_json(out.with_name(out.stem + "_export_check.json"), report)
    write_text(out.with_name(out.stem + "_export_check.md"), markdown_report(report))
    return report


def export_run(run_dir: Path, ds=None) -> dict:
    cfg_images = load_checkpoint(run_dir / "last.pt")["config"]["export"]["check_images"]
    return export_checkpoint(run_dir / "last.pt", run_dir / "model.onnx", cfg_images, ds)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--out", type=Path, help="default: model.onnx beside the checkpoint")
    p.add_argument("--images", type=int, default=200, help="test images for the exactness check")
    args = p.parse_args(argv)
    try:
        report = export_checkpoint(args.checkpoint, args.out, args.images)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown_report(report), end="")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
