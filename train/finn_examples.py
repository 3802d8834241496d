"""FINN's own example networks, exported as a FINN user exports them.

Brevitas ships the BNN-PYNQ family that FINN's examples and every published FINN figure are about
(``brevitas_examples.bnn_pynq``: CNV for CIFAR-10 32x32x3; LFC, SFC, TFC for MNIST 28x28; in the
bit widths W1A1, W1A2, W2A2). ``pretrained=False`` builds them offline with Brevitas' random
weights; their trained weights need the network. Two forms:

  exported   brevitas.export.export_qonnx as it is: a float image in [0, 1]; CNV computes
             2x - 1 in front of its signed 8-bit input quantizer, the FC nets flatten first.
  totensor   FINN's recipe of its cnv / tfc end-to-end examples: a ToTensor model (x / 255)
             merged in front with qonnx's MergeONNXModels, the input declared UINT8.

Untrained BatchNorm layers are the identity; their statistics and affine parameters are set to
random non-trivial values (seeded), so that the thresholds differ per channel as after training.

    wrn1bit finn-example cnv_1w1a [--form totensor] [--out cnv_1w1a.onnx] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from common.atomic import atomic_path
from common.errors import UserError

NETWORKS = ("cnv_1w1a", "cnv_1w2a", "cnv_2w2a", "lfc_1w1a", "lfc_1w2a", "sfc_1w1a", "sfc_1w2a", "sfc_2w2a",
            "tfc_1w1a", "tfc_1w2a", "tfc_2w2a")
FORMS = ("exported", "totensor")


def input_shape(name: str) -> list[int]:
    return [1, 3, 32, 32] if name.startswith("cnv") else [1, 1, 28, 28]


def finn_example(name: str, seed: int = 0):
    """The untrained Brevitas network, eval mode, BatchNorm set to random non-trivial values."""
    import torch
    from brevitas_examples.bnn_pynq import models

    if name not in NETWORKS:
        raise UserError(f"unknown FINN example network '{name}' (known: {', '.join(NETWORKS)})")
    torch.manual_seed(seed)
    m = getattr(models, name)(pretrained=False).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n, generator=g) * 2)
                mod.running_var.copy_(torch.rand(n, generator=g) * 4 + 0.5)
                mod.weight.copy_(torch.randn(n, generator=g))
                mod.bias.copy_(torch.randn(n, generator=g))
    return m


def export_finn_example(name: str, path, form: str = "exported", seed: int = 0):
    """Export ``name`` in ``form`` to ``path``; returns (path, the Brevitas network)."""
    import torch
    from brevitas.export import export_qonnx

    if form not in FORMS:
        raise UserError(f"--form must be one of {', '.join(FORMS)}, got '{form}'")
    m = finn_example(name, seed)
    shape = input_shape(name)
    path = Path(path)
    with atomic_path(path) as tmp:  # an interrupted export leaves no half-written model
        export_qonnx(m, torch.rand(*shape), str(tmp))
        if form == "totensor":
            to_tensor_recipe(tmp, shape)
    return path, m


def to_tensor_recipe(path: Path, shape: list[int]) -> None:
    """FINN's recipe, in place: x / 255 merged in front, the input declared UINT8."""
    from onnx import TensorProto, helper
    from qonnx.core.datatype import DataType
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.transformation.merge_onnx_models import MergeONNXModels
    from qonnx.util.basic import qonnx_make_model
    from qonnx.util.cleanup import cleanup_model

    div = helper.make_node("Div", ["inp", "c255"], ["out"], name="ToTensor")
    pre = ModelWrapper(qonnx_make_model(helper.make_graph(
        [div], "totensor", [helper.make_tensor_value_info("inp", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, shape)],
        [helper.make_tensor("c255", TensorProto.FLOAT, [], [255.0])])))
    model = cleanup_model(ModelWrapper(str(path))).transform(MergeONNXModels(pre))
    model.set_tensor_datatype(model.graph.input[0].name, DataType["UINT8"])
    model.save(str(path))


def main(argv=None, prog: str = "python -m train.finn_examples") -> int:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("network", help=f"one of {', '.join(NETWORKS)}")
    p.add_argument("--form", default="exported", help="exported (default) or totensor (FINN's recipe)")
    p.add_argument("--out", type=Path, help="default: <network>.onnx, <network>_totensor.onnx")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    out = args.out or Path(f"{args.network}{'' if args.form == 'exported' else '_' + args.form}.onnx")
    try:
        path, _ = export_finn_example(args.network, out, args.form, args.seed)
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"[export] {path}: FINN's {args.network} (untrained, BatchNorm randomized, seed {args.seed}), form {args.form}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
