"""The build report: report.json (the source of truth), report.md and report.png.

Per layer: name, op type, PE, SIMD, FINN's estimated cycles per frame, LUT, BRAM36 (and DSP,
URAM). Totals against the board's resources, the bottleneck layer and the estimated
throughput clock / max(cycles). The "synthesis" section (hw.synth.accelerator: yosys on the generated
RTL) is rendered next to FINN's estimates, with both totals side by side. Every file is written
atomically; report.md and report.png are rendered from the JSON, so a later step (verify-flow's
exactness check) adds a section to the JSON and re-renders the other two.
"""

from __future__ import annotations

import json
from pathlib import Path

from common.atomic import atomic_path, write_json, write_text
from flows.folding import CHECKED as RESOURCES  # the resource kinds FINN estimates per node

JSON, MD, PNG = "report.json", "report.md", "report.png"


def design_summary(layers: list[dict], board_resources: dict, budget: dict, clock_mhz: float) -> dict:
    """Totals, use in % of the board, bottleneck and estimated FPS from the per-layer rows."""
    totals = {k: sum(layer[k] for layer in layers) for k in RESOURCES}
    slowest = max(layers, key=lambda layer: layer["cycles"])
    return {
        "totals": totals,
        "board_resources": {k: board_resources.get(k, 0) for k in RESOURCES},
        "budget": budget,
        "percent_of_board": {k: (100 * totals[k] / board_resources[k]) if board_resources.get(k) else None
                             for k in RESOURCES},
        "max_cycles": slowest["cycles"],
        "bottleneck": slowest["name"],
        "clock_mhz": clock_mhz,
        "estimated_fps": clock_mhz * 1e6 / slowest["cycles"],
    }


def write_report(build_dir: str | Path, report: dict) -> None:
    """report.json, then report.md and report.png rendered from it."""
    build_dir = Path(build_dir)
    write_json(build_dir / JSON, report)
    write_text(build_dir / MD, render_markdown(report))
    if report.get("layers"):
        write_png(build_dir / PNG, report)


def read_report(build_dir: str | Path) -> dict:
    path = Path(build_dir) / JSON
    return json.loads(path.read_text()) if path.is_file() else {}


def update_report(build_dir: str | Path, section: str, value) -> dict:
    """Set one top-level section of report.json and re-render report.md / report.png."""
    report = read_report(build_dir)
    report[section] = value
    write_report(build_dir, report)
    return report


def _fmt(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.1f}" if v != int(v) else f"{int(v):,}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def _layer_table(report: dict) -> list[str]:
    s = report["summary"]
    lines = ["| layer | op type | PE | SIMD | cycles | LUT | FINN LUT | weights | BRAM36 | DSP |",
             "|---|---|---:|---:|---:|---:|---:|---|---:|---:|"]
    def finn_luts(la):  # FINN's own figure where the LUT column holds another
        return la["LUT"] if la.get("finn_LUT") is None else la["finn_LUT"]

    for la in report["layers"]:
        mark = " **(bottleneck)**" if la["name"] == s["bottleneck"] else ""
        lines.append(f"| {la['name']}{mark} | {la['op_type']} | {_fmt(la['pe'])} | {_fmt(la['simd'])} | "
                     f"{_fmt(la['cycles'])} | {_fmt(la['LUT'])} | {_fmt(finn_luts(la))} | "
                     f"{la.get('ram_style') or '-'} | {_fmt(la['BRAM36'])} | {_fmt(la['DSP'])} |")
    t, b, p = s["totals"], s["board_resources"], s["percent_of_board"]
    finn = sum(finn_luts(la) for la in report["layers"])
    lines.append(f"| **total** | | | | | {_fmt(t['LUT'])} | {_fmt(finn)} | | {_fmt(t['BRAM36'])} | "
                 f"{_fmt(t['DSP'])} |")
    lines.append(f"| **board** | | | | | {_fmt(b['LUT'])} | | | {_fmt(b['BRAM36'])} | {_fmt(b['DSP'])} |")
    pct = {k: "-" if p[k] is None else f"{p[k]:.1f}%" for k in RESOURCES}
    lines.append(f"| **% of board** | | | | | {pct['LUT']} | | | {pct['BRAM36']} | {pct['DSP']} |")
    return lines


def _design_section(report: dict) -> list[str]:
    s, f = report["summary"], report.get("folding", {})
    budget = ", ".join(f"{k} {s['budget'][k]:,.0f}" for k in RESOURCES if s["board_resources"][k])
    rtl = [la for la in report.get("layers", []) if la.get("model") == "rtl"]
    lines = ["## Design (estimates)", "",
             f"- folding: {f.get('source', '?')}"
             + (f", target {f['target_cycles']:,} cycles/frame after {len(f.get('trials', []))} trials"
                if f.get("target_cycles") else ""),
             f"- budget (board x (1 - margin {report.get('margin', 0):.2f})): {budget}",
             f"- bottleneck: {s['bottleneck']}, {s['max_cycles']:,} cycles per frame",
             f"- estimated throughput: **{s['estimated_fps']:,.0f} frames/s** at {s['clock_mhz']:g} MHz"]
    if f.get("limit"):
        lines.append(f"- what stops a faster design: {f['limit']}")
    if rtl:
        lines.append(f"- estimates: the {len(rtl)} MVAUs that become this project's RTL by its cost model "
                     "(hw/synth/cost_model.py, fitted to yosys; FINN's own figure in the FINN LUT column), "
                     "every other layer FINN's estimate scaled per op type to yosys; the width converters "
                     "the folding needs are included, and the FIFOs between layers by a mean per stream width "
                     "(sized by `make verify`, counted by yosys below)")
    lines += ["- not in these estimates: the block RAM of deep FIFOs; no flip-flop estimate", ""]
    return lines + _layer_table(report) + [""]


def _codegen_section(report: dict) -> list[str]:
    c = report.get("codegen")
    if not c:
        return []
    lines = ["## Code generation without vendor tools", "", f"- {c['summary']}"]
    if c.get("error"):
        lines.append(f"- failed: `{c['error']}`")
    return lines + [""]


def _host_section(report: dict) -> list[str]:
    h = report.get("host")
    if not h:
        return []
    return ["## Host and accelerator", "", f"- input: {h['input']['summary']}", f"- output: {h['output']['summary']}",
            ""]


def _vendor_section(report: dict) -> list[str]:
    v = report.get("vendor_steps")
    if not v:
        return []
    lines = ["## Vendor steps (Vivado / Vitis HLS)", ""]
    if v.get("done"):
        lines.append(f"- ran: {', '.join(v['done'])}")
    if v.get("stopped_at"):
        lines.append(f"- stopped at **{v['stopped_at']}**: {v['reason']}")
    return lines + [""]


def _synthesis_section(report: dict) -> list[str]:
    sec = report.get("synthesis")
    if not sec:
        return []
    if "skipped" in sec:
        return ["## Synthesis estimate (yosys)", "", f"- {sec['skipped']}", ""]
    from hw.synth import markdown_lines

    lines = markdown_lines(sec, "Synthesis estimate", level=2)
    s = report.get("summary")
    if s:  # FINN's estimate beside yosys's, for the kinds both give
        t = sec["totals"]
        lines += ["", "| total | FINN estimate (layers only) | yosys (every RTL module) | board |",
                  "|---|---:|---:|---:|"]
        for k in ("LUT", "FF", "BRAM36", "DSP"):
            finn = _fmt(s["totals"][k]) if k in s["totals"] else "- (FINN estimates no FFs)"
            board = sec["budget"].get(k)
            lines.append(f"| {k} | {finn} | {_fmt(t[k])} | {_fmt(board) if board is not None else '-'} |")
    return lines + [""]


def _exactness_section(report: dict) -> list[str]:
    e = report.get("exactness")
    if not e:
        return []
    ckpt = f"; Brevitas checkpoint `{e['checkpoint']}` compared too" if e.get("checkpoint") else ""
    lines = ["## Exactness against the QONNX model (integers)", "",
             f"- {e['images']} inputs: {e['inputs']}{ckpt}: " + ("**PASSED**" if e["passed"] else "**FAILED**"),
             f"- reference: {e['reference']}", "",
             "| stage | labels equal | integer outputs equal |", "|---|---:|---:|"]
    for name, r in e["stages"].items():
        lines.append(f"| {name} | {r['labels_equal']}/{r['images']} | {r['integers_equal']}/{r['images']} |")
    if e.get("note"):
        lines += ["", f"- {e['note']}"]
    return lines + [""]


def render_markdown(report: dict) -> str:
    title = f"# Build report: {Path(report.get('model', '?')).name} on {report.get('board', '?')}"
    lines = [title, ""]
    if report.get("part"):
        lines += [f"- part {report['part']}, clock {report['summary']['clock_mhz']:g} MHz"
                  if report.get("summary") else f"- part {report['part']}", ""]
    lines += _host_section(report)
    if report.get("layers"):
        lines += _design_section(report)
    lines += (_codegen_section(report) + _synthesis_section(report) + _vendor_section(report)
              + _exactness_section(report))
    if report.get("timings_s"):
        lines += ["## Build time", "", ", ".join(f"{k} {v:.1f} s" for k, v in report["timings_s"].items()), ""]
    return "\n".join(lines)


def write_png(path: Path, report: dict) -> None:
    """Horizontal bars per layer: cycles per frame, LUT, BRAM36 (matplotlib, Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    layers = report["layers"]
    names = [la["name"] for la in layers]
    s = report["summary"]
    panels = [("cycles", "cycles per frame", None), ("LUT", "LUT", s["budget"]["LUT"]),
              ("BRAM36", "BRAM36", s["budget"]["BRAM36"])]
    fig, axes = plt.subplots(1, 3, figsize=(15, 0.25 * len(names) + 2), sharey=True)
    for ax, (key, label, budget) in zip(axes, panels):
        values = [la[key] for la in layers]
        colors = ["tab:red" if key == "cycles" and la["name"] == s["bottleneck"] else "tab:blue" for la in layers]
        ax.barh(range(len(names)), values, color=colors)
        ax.set_xlabel(label)
        total = sum(values) if key != "cycles" else max(values)
        ax.set_title(f"{label}: {'max' if key == 'cycles' else 'total'} {total:,.0f}"
                     + (f" (budget {budget:,.0f})" if budget else ""), fontsize=9)
    axes[0].set_yticks(range(len(names)), names, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle(f"{Path(report.get('model', '')).name} on {report.get('board', '')}: "
                 f"est. {s['estimated_fps']:,.0f} FPS at {s['clock_mhz']:g} MHz", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)
