"""The BWNH report: per-layer reconstruction errors and test top-1, as JSON and Markdown."""

from __future__ import annotations

from pathlib import Path

from common.atomic import write_json, write_text


def markdown(r: dict) -> str:
    lines = [f"# BWNH binarization of `{r['checkpoint']}`", "",
             f"- calibration: {r['calibration_images']} training images; layer inputs X from the "
             f"{'already binarized layers below (layer-wise, as in the paper)' if r['inputs'] == 'binarized' else 'full-precision network'}",
             "- relative error = ||X^T W - X^T B A||_F^2 / ||X^T W||_F^2, both methods on the same X; "
             "centered: the same with each output channel's mean over all patches removed (what a "
             "following BatchNorm subtracts)", "",
             "| layer | weight shape | fan-in | BWNH | sign(W)·mean\\|W\\| | BWNH, centered | "
             "sign(W)·mean\\|W\\|, centered | channels where BWNH is lower | iterations |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for x in r["layers"]:
        lines.append(f"| `{x['layer']}` | {'x'.join(map(str, x['shape']))} | {x['fan_in']} | "
                     f"{x['rel_error_bwnh']:.4f} | {x['rel_error_sign_mean']:.4f} | "
                     f"{x['rel_error_centered_bwnh']:.4f} | {x['rel_error_centered_sign_mean']:.4f} | "
                     f"{x['channels_bwnh_lower']}/{x['channels']} | {x['iterations']} |")
    t = r["test_top1"]
    lines += ["", f"Test top-1 on {r['test_images']} test images, before any fine-tuning:", "",
              "| model | BatchNorm statistics of the full-precision model | re-estimated on the calibration images |",
              "|---|---:|---:|"]
    for key, label in (("full_precision", "full precision"), ("sign_mean", "sign(W)·mean\\|W\\|"), ("bwnh", "BWNH")):
        lines.append(f"| {label} | {100 * t[key]['fp_bn']:.2f}% | {100 * t[key]['reestimated_bn']:.2f}% |")
    lines += ["", f"Binarization took {r['seconds']:.1f} s."]
    if "finetune" in r:
        f = r["finetune"]
        lines += [f"Fine-tuned as a 1-bit model (model.weight_quant {f['weight_quant']}) for {f['epochs']} "
                  f"epochs: test top-1 {100 * f['test_top1']:.2f}%; QONNX export check "
                  f"{'passed' if f['export_passed'] else 'FAILED' if f['export_passed'] is False else 'not run'}."]
    return "\n".join(lines) + "\n"


def write_report(run_dir: Path, r: dict) -> None:
    write_json(run_dir / "bwnh_report.json", r)
    write_text(run_dir / "bwnh_report.md", markdown(r))
