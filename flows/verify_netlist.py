"""`wrn1bit verify --netlist` (`make verify NETLIST=1`): every layer of the build as RTL and as the
netlist yosys makes of it, on the same vectors (hw.layer_netlist), against FINN's python execution.

The build is the one `wrn1bit verify` simulates (flows.build, folded with ``margin``); the inputs are
the same real images (flows.verify.prepare_verification), each layer fed the tensors FINN's python
execution of the whole graph gives it. The netlists are the yosys estimate's (``<build>/synth/<layer>/
netlist.v``, from its cache where the build synthesized the layer). Report:
``<build>/verify_netlist.{json,md}``: per layer RTL == netlist == software, same output cycles, and
the time each step took.
"""

from __future__ import annotations

import sys
from pathlib import Path

from common.atomic import write_json, write_text
from common.boards import DEFAULT_MARGIN, check_margin, load_board
from common.errors import UserError
from flows.build import build, build_dir_for, codegen_model
from flows.exactness import stage_input
from flows.finn_env import finn_log_to
from flows.verify import prepare_verification


def verify_netlist_layers(model_path, board_name: str = "pynq-z2", out="build", checkpoint=None, images=3,
                          gap_prob: float = 0.1, stall_prob: float = 0.1, seed: int = 0, data=None, inputs=None,
                          margin: float = DEFAULT_MARGIN, layers: list[str] | None = None) -> dict:
    from hw.layer_netlist import netlist_markdown, verify_layers_netlist

    if images == "all" or int(images) < 1:
        raise UserError(f"--netlist runs every layer image by image: give --images 1..N, got {images}")
    check_margin(margin)
    board = load_board(board_name)
    v = prepare_verification(model_path, images, checkpoint, data, inputs)
    build(v.model_path, board_name, out, margin=margin, vendor_free=True)
    bdir = build_dir_for(v.model_path, board, Path(out))

    def progress(k, n, row):
        state = row.get("skipped") or ("ok" if row["passed"] else "FAILED")
        print(f"[netlist] {k}/{n} {row['layer']}: {state}", file=sys.stderr, flush=True)

    with finn_log_to(bdir / "finn.log"):
        model = codegen_model(bdir)
        names = [n.name for n in model.graph.node]
        unknown = [n for n in (layers or []) if n not in names]
        if unknown:
            raise UserError(f"no layer named {', '.join(unknown)} in the build (layers: {', '.join(names)})")
        r = verify_layers_netlist(model, stage_input(model, v.p, 1.0), bdir / "synth", gap_prob=gap_prob,
                                  stall_prob=stall_prob, seed=seed, progress=progress, only=layers)
    r.update(model=str(model_path), board=board.name, inputs=v.summary().get("inputs"))
    write_json(bdir / "verify_netlist.json", r)
    write_text(bdir / "verify_netlist.md", "\n".join(
        [f"# Netlist verification: {Path(model_path).name} on {board.name}", "", *netlist_markdown(r), ""]))
    r["report"] = str(bdir / "verify_netlist.md")
    return r
