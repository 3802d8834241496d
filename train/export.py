"""QONNX export of a trained 1-bit WRN, checked against the Brevitas model on real images.

The check executes the exported graph with qonnx's executor and demands, for every image,
the same predicted label and (for models with quantized class scores) the same integer
pre-scale outputs: sum over the pooled positions of the integer class scores, i.e. the value
the accelerator computes before the final scale. Every conv of the graph must hold, in each
output channel c, only the two values +-a_c (a_c > 0), each weight's sign that of its latent
weight, with a_c the scale of the model's binary-weight method computed independently in numpy:
sqrt(2 / fan_in) (he_const), 1 (sign), mean |w_c| of the latent weights (bwn) or the learned
scale (bwn_learned).

Usage: python -m train.export CHECKPOINT [--out model.onnx] [--images N]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from common.atomic import atomic_path, write_json, write_text
from common.errors import UserError
from train.checkpoint import load_checkpoint, model_from_checkpoint

INTEGER_TOL = 0.05  # a float output counts as integer-valued if within this of an integer
# bwn / bwn_learned scales: Brevitas computes mean |w| (or 2 ** the learned log2-scale) in float32,
# the reference in float64; the two differ by float32 rounding (measured <= 2 ulps, ~2e-7).
SCALE_RTOL = 1e-6


def export_qonnx(model: torch.nn.Module, image_shape: tuple[int, int, int], path: Path) -> Path:
    """Export with Brevitas, then tidy the graph with qonnx (shapes, names, constant folding)."""
    from brevitas.export import export_qonnx as brevitas_export_qonnx
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.cleanup import cleanup_model

    model = model.cpu().eval()
    with atomic_path(path) as tmp:
        brevitas_export_qonnx(model, args=torch.zeros(1, *image_shape), export_path=str(tmp))
        # torch's exporter may put the weights in an external "<file>.data"; qonnx's save
        # writes them back inline, so the .onnx is self-contained and the .data goes
        cleanup_model(ModelWrapper(str(tmp))).save(str(tmp))
        tmp.with_name(tmp.name + ".data").unlink(missing_ok=True)
    return path


def expected_scales(module: torch.nn.Module, method: str) -> tuple[np.ndarray, bool]:
    """The per-output-channel scale a_c of a binary conv, from its latent weights / scale parameter.

    Returns (a as float64, one per output channel; whether the graph must equal it exactly).
    Computed here with numpy from the method's definition, not by the quantizer under check.
    """
    w = module.weight.detach().cpu().numpy().astype(np.float64)
    channels, fan_in = w.shape[0], int(np.prod(w.shape[1:]))
    if method == "he_const":  # McDonnell: the float32 constant sqrt(2 / fan_in), exactly
        return np.full(channels, np.float32(np.sqrt(2.0 / fan_in)), dtype=np.float64), True
    if method == "sign":
        return np.ones(channels), True
    if method == "bwn":
        return np.abs(w).reshape(channels, -1).mean(axis=1), False
    if method == "bwn_learned":  # the parameter is log2 of the scale (Brevitas LOG_FP; keeps it positive)
        log_scale = dict(module.named_parameters())["weight_quant.tensor_quant.scaling_impl.value"]
        return np.exp2(log_scale.detach().cpu().numpy().astype(np.float64)).reshape(channels), False
    raise UserError(f"no export check for weight_quant {method!r}")


def _latent_weight(model_wrapper, conv_node) -> np.ndarray | None:
    """The latent float weights that the conv's BipolarQuant binarizes, or None."""
    q = model_wrapper.find_producer(conv_node.input[1])
    if q is None or q.op_type != "BipolarQuant":
        return None
    return model_wrapper.get_initializer(q.input[0])


def conv_weight_values(model_wrapper, context: dict, model: torch.nn.Module,
                       full_precision_rows: list | None = None) -> list[dict]:
    """For every Conv node: do its weights hold +-a_c per output channel, a_c the expected scale?

    Each graph conv is matched to the model's conv by its latent weights (BipolarQuant's input),
    then every weight must equal sign(latent) * a_c exactly, with a_c > 0 the graph's own value per
    channel, and a_c must equal the independently computed expected scale (exactly for he_const
    and sign, to SCALE_RTOL for the float32 mean / power of two of bwn and bwn_learned).
    A conv without a BipolarQuant whose weights are those of one of the model's
    ``full_precision_convs()`` (float by design, e.g. ResNetE's ``fp_downsample``; see
    _same_float_conv) is not a binary conv: it goes to ``full_precision_rows`` instead of the
    result; every other conv is checked.
    """
    full_precision_rows = [] if full_precision_rows is None else full_precision_rows
    method = getattr(getattr(model, "cfg", None), "weight_quant", "he_const")
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    full_precision = model.full_precision_convs() if hasattr(model, "full_precision_convs") else []
    rows = []
    for node in model_wrapper.graph.node:
        if node.op_type != "Conv":
            continue
        w = context.get(node.input[1])
        if w is None:
            w = model_wrapper.get_initializer(node.input[1])
        row = {"node": node.name, "shape": list(w.shape), "method": method, "ok": False}
        latent = _latent_weight(model_wrapper, node)
        if latent is None and any(_same_float_conv(conv, bn, w) for conv, bn in full_precision):
            # a conv the model keeps in float on purpose (ResNetE's fp_downsample): listed, not
            # counted as a binary conv
            full_precision_rows.append({"node": node.name, "shape": list(w.shape)})
            continue
        rows.append(row)
        module = None if latent is None else next(
            (m for m in convs if tuple(m.weight.shape) == latent.shape
             and np.array_equal(m.weight.detach().cpu().numpy(), latent)), None)
        if module is None:
            row["reason"] = "weights not binarized from a latent weight of the model (no matching BipolarQuant)"
            continue
        expected, exact = expected_scales(module, method)
        flat = w.reshape(w.shape[0], -1).astype(np.float64)
        got = np.abs(flat).max(axis=1)  # a_c as the graph holds it
        signs = np.where(latent.reshape(w.shape[0], -1) >= 0, 1.0, -1.0)
        two_values = bool(np.all(got > 0) and np.array_equal(flat, signs * got[:, None]))
        rel = np.abs(got - expected) / expected
        scale_ok = bool(np.array_equal(got, expected) if exact else np.all(rel <= SCALE_RTOL))
        row.update({"values_per_channel": int(max(len(np.unique(r)) for r in flat)),
                    "scale": got.tolist() if len(np.unique(got)) > 1 else float(got[0]),
                    "expected": expected.tolist() if len(np.unique(expected)) > 1 else float(expected[0]),
                    "max_rel_scale_error": float(rel.max()), "ok": two_values and scale_ok})
        if not two_values:
            row["reason"] = "weights are not sign(latent) * a_c with one a_c > 0 per output channel"
        elif not scale_ok:
            row["reason"] = f"scale differs from the {method} scale (max relative error {rel.max():.2e})"
    return rows


def _same_float_conv(conv: torch.nn.Module, bn: torch.nn.Module | None, w: np.ndarray) -> bool:
    """Does the graph's float conv weight ``w`` come from the model's ``conv``?

    torch's exporter folds the BatchNorm that follows a float conv into its weights (Brevitas'
    quantized convs stay apart), so ``w`` is conv.weight * gamma / sqrt(var + eps) per output
    channel; compared in float64 to float32 rounding (relative 1e-5 of the largest weight).
    """
    ref = conv.weight.detach().cpu().numpy().astype(np.float64)
    if tuple(ref.shape) != tuple(w.shape):
        return False
    candidates = [ref]
    if bn is not None:
        factor = 1.0 / np.sqrt(bn.running_var.detach().cpu().numpy().astype(np.float64) + bn.eps)
        if bn.weight is not None:
            factor = factor * bn.weight.detach().cpu().numpy().astype(np.float64)
        candidates.append(ref * factor.reshape(-1, *([1] * (ref.ndim - 1))))
    w = w.astype(np.float64)
    return any(np.abs(w - c).max() <= 1e-5 * max(np.abs(c).max(), 1e-12) for c in candidates)


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
    fp_convs: list[dict] = []
    weights = conv_weight_values(mw, ctx, model, fp_convs)
    report = {
        "onnx": str(onnx_path), "images": len(x),
        "weight_quant": getattr(getattr(model, "cfg", None), "weight_quant", "he_const"),
        "conv_layers": len(weights), "conv_layers_two_values": int(sum(r["ok"] for r in weights)),
        "bad_conv_layers": [r for r in weights if not r["ok"]],
        "full_precision_convs": fp_convs,
    }
    ref_label, got_label = ref.argmax(1), got.argmax(1)
    scale = model.head_scale()
    if scale is not None:
        positions = mw.get_tensor_shape(_pool_input(mw))[2:]
        hw = int(np.prod(positions))
        ref_i, got_i = prescale_integers(ref, scale, hw), prescale_integers(got, scale, hw)
        frac = max(np.abs(ref_i - np.rint(ref_i)).max(), np.abs(got_i - np.rint(got_i)).max())
        ref_int, got_int = np.rint(ref_i).astype(np.int64), np.rint(got_i).astype(np.int64)
        diff = np.abs(ref_int - got_int)
        report.update({
            "integer_outputs": True, "integer_valued": bool(frac < INTEGER_TOL),
            "max_distance_from_integer": float(frac),
            "integers_equal": int((diff == 0).all(axis=1).sum()), "max_integer_diff": int(diff.max()),
            "head_scale": scale, "pooled_positions": hw,
        })
        exact = report["integer_valued"] and report["integers_equal"] == len(x)
        # The label is the first arg max of the integers, as the accelerator's TopK/LabelSelect
        # picks it. The float outputs' arg max would depend on rounding where two classes tie.
        ref_label, got_label = ref_int.argmax(1), got_int.argmax(1)
    else:
        report["integer_outputs"] = False  # full-precision class scores: labels only
        report["max_abs_output_diff"] = float(np.abs(ref - got).max())
        exact = True
    report["labels_equal"] = int((ref_label == got_label).sum())
    if labels is not None:
        report["top1_brevitas"] = float((ref_label == labels.numpy()).mean())
        report["top1_qonnx"] = float((got_label == labels.numpy()).mean())
    report["passed"] = bool(exact and report["labels_equal"] == len(x)
                            and report["conv_layers_two_values"] == report["conv_layers"])
    return report


def _pool_input(mw) -> str:
    # torch's dynamo exporter writes the global average pool as ReduceMean over H, W
    pools = [n for n in mw.graph.node if n.op_type in ("GlobalAveragePool", "ReduceMean")]
    if len(pools) != 1:
        raise UserError(f"{mw.model.graph.name}: expected one global average pool, found {len(pools)}")
    return pools[0].input[0]


SCALE_DEFINITION = {"he_const": "sqrt(2/fan_in)", "sign": "1", "bwn": "mean |w_c|",
                    "bwn_learned": "learned, per channel"}


def markdown_report(r: dict) -> str:
    lines = [f"# QONNX export check: {'PASSED' if r['passed'] else 'FAILED'}", "",
             f"- graph: `{r['onnx']}`",
             f"- images: {r['images']} real test images",
             f"- labels equal (Brevitas vs QONNX executor): {r['labels_equal']} / {r['images']}",
             f"- conv layers whose weights are +-a_c per output channel, a_c the "
             f"{r.get('weight_quant', 'he_const')} scale ({SCALE_DEFINITION[r.get('weight_quant', 'he_const')]}): "
             f"{r['conv_layers_two_values']} / {r['conv_layers']}"
             + (f" ({len(r['full_precision_convs'])} full-precision downsampling convs, float by design, "
                "not counted)" if r.get("full_precision_convs") else "")]
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


def main(argv=None, prog: str = "python -m train.export") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__,
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
