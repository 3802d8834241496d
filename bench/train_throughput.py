"""Training throughput of the 1-bit WRN vs its full-precision twin, on this machine's CPU.

Each variant trains in its own process (so its peak RSS is its own) on random batches of the
config's image shape, with the config's batch size. The first --warmup steps are timed apart:
they include Brevitas' scale-statistics phase (the residual/class-score quantizers collect
statistics for 100 steps), which is slower than steady state.

    python bench/train_throughput.py [--config CFG] [--steps 40] [--warmup 110] [--threads 2]

Prints a table and writes bench/results/train_throughput.{json,md}.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


VARIANTS = {"1-bit weights, quantized activations (config)": "config",
            "1-bit weights, quantized activations, Brevitas' eager quantizers": "config-eager",
            "1-bit weights, float activations (paper)": "paper",
            "full precision": "fp"}


def _run(variant: str, args: dict, queue) -> None:
    import os

    if VARIANTS[variant] == "config-eager":  # train.quant.fused off: Brevitas' IntQuant as it is
        os.environ["WRN1BIT_FUSED_QUANT"] = "0"
    import torch
    import torch.nn.functional as F

    from train.config import load_config
    from train.models import build_model, count_conv_weights
    from train.optim import param_groups

    torch.set_num_threads(args["threads"])
    cfg = load_config(args["config"], full_precision=VARIANTS[variant] == "fp")
    if VARIANTS[variant] == "paper":  # 1-bit weights, float activations: McDonnell's setting
        cfg["model"].update(act_bits=None, input_bits=None, residual_bits=None, head_bits=None)
    shape = tuple(args["image_shape"])
    torch.manual_seed(0)
    model = build_model({**cfg["model"], "in_channels": shape[0], "num_classes": 10}).train()
    t = cfg["train"]
    opt = torch.optim.SGD(param_groups(model, t["weight_decay"]), lr=0.01, momentum=t["momentum"])
    bs = t["batch_size"]
    x, y = torch.rand(bs, *shape), torch.randint(0, 10, (bs,))

    def steps(n: int) -> float:
        t0 = time.perf_counter()
        for _ in range(n):
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    first = steps(1)  # with the fused quantizers: their one-time torch.compile
    warm = steps(args["warmup"] - 1)
    steady = steps(args["steps"])
    queue.put({
        "variant": variant, "conv_weights": count_conv_weights(model), "first_step_s": first,
        "warmup_images_per_s": (args["warmup"] - 1) * bs / warm,
        "images_per_s": args["steps"] * bs / steady,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })


def verdict(ratios: dict) -> str:
    def speed(r: float) -> str:
        return "as fast as full precision" if r >= 0.9 else f"{r:.2f}x as fast as full precision"

    return (f"The paper claims 1-bit-weight training is as fast as full precision. Here, with 1-bit "
            f"weights alone it is {speed(ratios['paper'])}; with quantized activations too it is "
            f"{speed(ratios['config'])} (with Brevitas' eager quantizers {speed(ratios['config-eager'])}: "
            f"their chain of elementwise ops, not the convolutions, is the difference that "
            f"train.quant.fused compiles away).")


def main() -> int:
    from bench.paths import repo_relative
    from train.config import DEFAULT_CONFIG, load_config

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=str(DEFAULT_CONFIG))
    p.add_argument("--steps", type=int, default=40, help="timed steady-state steps")
    p.add_argument("--warmup", type=int, default=110, help="steps before timing (Brevitas stats phase)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--image-shape", type=int, nargs=3, default=[1, 28, 28])
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "train_throughput"))
    a = p.parse_args()
    args = {"config": a.config, "steps": a.steps, "warmup": a.warmup, "threads": a.threads,
            "image_shape": a.image_shape}
    ctx = mp.get_context("spawn")
    rows = []
    for variant in VARIANTS:
        q = ctx.Queue()
        proc = ctx.Process(target=_run, args=(variant, args, q))
        proc.start()
        rows.append(q.get())
        proc.join()
        print(f"{variant:>66}: {rows[-1]['images_per_s']:.0f} img/s steady, "
              f"{rows[-1]['warmup_images_per_s']:.0f} img/s in warm-up, peak RSS {rows[-1]['peak_rss_mib']:.0f} MiB",
              flush=True)
    speed = {VARIANTS[r["variant"]]: r["images_per_s"] for r in rows}
    ratios = {kind: speed[kind] / speed["fp"] for kind in speed if kind != "fp"}
    cfg = load_config(a.config)
    result = {
        "config": repo_relative(a.config), "model": f"WRN-{cfg['model']['depth']}-{cfg['model']['width']}",
        "act_bits_1bit_model": cfg["model"]["act_bits"], "batch_size": cfg["train"]["batch_size"],
        "image_shape": a.image_shape, "threads": a.threads, "cpu": platform.processor() or platform.machine(),
        "rows": rows, "ratio_config_over_fp": ratios["config"], "ratio_paper_over_fp": ratios["paper"],
        "ratio_config_eager_over_fp": ratios["config-eager"], "verdict": verdict(ratios),
        "command": "python bench/train_throughput.py " + " ".join(sys.argv[1:]),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from common.atomic import write_json, write_text

    write_json(out.with_suffix(".json"), result)
    md = [f"# Training throughput: {result['model']}, batch {result['batch_size']}, {a.threads} threads", "",
          "| variant | conv weights | img/s (steady) | img/s (warm-up) | first step (s) | peak RSS (MiB) |",
          "|---|---|---|---|---|---|"]
    md += [f"| {r['variant']} | {r['conv_weights']} | {r['images_per_s']:.0f} | {r['warmup_images_per_s']:.0f} "
           f"| {r['first_step_s']:.1f} | {r['peak_rss_mib']:.0f} |" for r in rows]
    md += ["", f"Ratios to full precision, steady state: 1-bit weights with float activations "
           f"**{ratios['paper']:.2f}**, with the config's quantized activations **{ratios['config']:.2f}** "
           f"(Brevitas' eager quantizers: {ratios['config-eager']:.2f}).", "", result["verdict"], "",
           "The first step of the config includes compiling the fused quantizers (once per process; "
           "torch's on-disk kernel cache makes later processes faster).", "",
           f"Command: `{result['command']}`"]
    write_text(out.with_suffix(".md"), "\n".join(md) + "\n")
    print(f"ratios to full precision: paper setting {ratios['paper']:.2f}, config {ratios['config']:.2f}, "
          f"config with eager quantizers {ratios['config-eager']:.2f} -> {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
