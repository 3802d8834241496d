"""The summed estimate of several synthesized layers against a board's budget, as JSON and Markdown.

``SynthReport`` adds up the per-layer SynthResults (times the identical instances each stands
for), per layer type and in total, compares the total with the board's resources x (1 - margin)
and says whether it fits; ``markdown_lines`` renders its as_dict() (also what the build report
renders from its JSON).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from common.atomic import write_json, write_text
from common.boards import RESOURCE_KINDS, DesignTooLarge, check_margin
from hw.synth.runner import SYNTH_OPTIONS, SynthResult
from hw.synth.staging import SOURCE_FIXES

REPORT_KINDS = ("LUT", "LUTRAM", "FF", "BRAM36", "DSP", "URAM", "CARRY")
PRE_PNR_NOTE = ("Pre-place-and-route estimates from yosys `synth_xilinx`, not Vivado: LUTs are an upper bound "
                "(Vivado packs LUT pairs into one site); each layer is synthesized on its own, so nothing is "
                "optimized across layer boundaries.")


@dataclass
class SynthReport:
    family: str
    layers: list[tuple[str, SynthResult]]
    budget: dict[str, float]          # board resources x (1 - margin), per checked kind
    margin: float = 0.0
    board: str | None = None
    seconds: float = 0.0              # wall time of the whole run
    notes: list[str] = field(default_factory=list)
    kinds: dict[str, str] = field(default_factory=dict)    # layer -> its type (op type), for by_kind
    copies: dict[str, int] = field(default_factory=dict)   # layer -> identical instances it stands for
    failed: list[tuple[str, str]] = field(default_factory=list)  # (layer, why yosys could not synthesize it)

    def count(self, name: str) -> int:
        return self.copies.get(name, 1)

    def row(self, name: str, r: SynthResult) -> dict[str, float]:
        """A layer's resources times the instances it stands for: what it adds to the total."""
        return {kind: self.count(name) * getattr(r, kind) for kind in REPORT_KINDS}

    @property
    def totals(self) -> dict[str, float]:
        rows = [self.row(name, r) for name, r in self.layers]
        return {kind: sum(row[kind] for row in rows) for kind in REPORT_KINDS}

    @property
    def by_kind(self) -> dict[str, dict]:
        """Per layer type (``kinds``; a layer without one is its own type): instances and sums."""
        out: dict[str, dict] = {}
        for name, r in self.layers:
            kind = self.kinds.get(name, name)
            agg = out.setdefault(kind, {"instances": 0, **{k: 0 for k in REPORT_KINDS}})
            agg["instances"] += self.count(name)
            for k, v in self.row(name, r).items():
                agg[k] += v
        return out

    @property
    def used_pct(self) -> dict[str, float | None]:
        t = self.totals
        return {k: (100.0 * t[k] / b if b > 0 else None) for k, b in self.budget.items()}

    @property
    def over(self) -> list[str]:
        """The budget kinds whose total exceeds the budget (any use of a kind the board lacks)."""
        t = self.totals
        return [k for k, b in self.budget.items() if t[k] > b]

    @property
    def fits(self) -> bool:
        return not self.over

    def verdict(self) -> str:
        if self.fits:
            verdict = "fits the budget"
        else:
            pct = self.used_pct
            verdict = "does NOT fit: " + ", ".join(
                f"{k} {self.totals[k]:g} > {self.budget[k]:g}" + (f" ({pct[k]:.0f}%)" if pct[k] is not None else "")
                for k in self.over)
        if self.failed:  # the total lacks these layers: a fit is not established
            verdict += (f" (incomplete: {len(self.failed)} layer{'s' if len(self.failed) > 1 else ''} "
                        "not synthesized by yosys)")
        return verdict

    def check(self) -> None:
        """Raise DesignTooLarge (one line) when the totals exceed the budget."""
        if not self.fits:
            where = f" on {self.board}" if self.board else ""
            raise DesignTooLarge(f"yosys estimate{where} {self.verdict()}")

    def as_dict(self) -> dict:
        return {
            "tool": f"yosys synth_xilinx -family {self.family} {SYNTH_OPTIONS}", "family": self.family,
            "board": self.board, "margin": self.margin, "seconds": round(self.seconds, 2),
            "layers": [{"name": name, "kind": self.kinds.get(name), "copies": self.count(name),
                        "row": self.row(name, r), **r.as_dict()} for name, r in self.layers],
            "failed": [{"name": name, "kind": self.kinds.get(name), "reason": why} for name, why in self.failed],
            "by_kind": self.by_kind, "totals": self.totals, "budget": self.budget,
            "used_pct": {k: (round(v, 2) if v is not None else None) for k, v in self.used_pct.items()},
            "over": self.over, "fits": self.fits, "complete": not self.failed, "verdict": self.verdict(),
            "notes": self.notes,
        }

    def markdown(self, title: str | None = None, level: int = 1) -> str:
        return "\n".join(markdown_lines(self.as_dict(), title, level)) + "\n"

    def write(self, json_path: str | Path, md_path: str | Path | None = None) -> None:
        """Write the report as JSON (and Markdown beside it), each file atomically."""
        json_path = Path(json_path)
        write_json(json_path, self.as_dict())
        write_text(Path(md_path) if md_path else json_path.with_suffix(".md"), self.markdown())


def markdown_lines(d: dict, title: str | None = None, level: int = 1) -> list[str]:
    """Markdown of a SynthReport's as_dict() (also what the build report renders from its JSON):
    the verdict, a table per layer type, a table per layer, the cells nothing counted."""
    cols = REPORT_KINDS
    fmt = lambda v: f"{v:,.1f}" if isinstance(v, float) and v != int(v) else f"{int(v):,}"  # noqa: E731
    t, budget, pct = d["totals"], d["budget"], d["used_pct"]

    def tail_rows(extra: str) -> list[str]:
        """total / budget / % rows; ``extra``: the cell between the label and the kinds."""
        return [f"| **total** | {extra} | " + " | ".join(f"**{fmt(t[k])}**" for k in cols) + " |",
                "| budget | | " + " | ".join(fmt(budget[k]) if k in budget else "" for k in cols) + " |",
                "| % of budget | | " + " | ".join(
                    (f"{pct[k]:.1f}%" if pct[k] is not None else "-") if k in pct else "" for k in cols) + " |"]

    board = d.get("board") or "the board"
    budget_is = (f"{board}'s resources" if not d["margin"] else
                 f"{board}'s resources x (1 - margin {d['margin']:g})")
    ran = [la for la in d["layers"] if not la.get("cached")]
    lines = [f"{'#' * level} {title or 'Synthesis estimate'} (yosys `synth_xilinx -family {d['family']}`)", "",
             f"Budget: {budget_is}. **Verdict: {d['verdict']}.** Wall time {d['seconds']:,.0f} s: "
             f"{len(ran)} yosys runs ({sum(la['seconds'] for la in ran):,.0f} s summed), "
             f"{len(d['layers']) - len(ran)} results from the cache.", ""]
    if d.get("by_kind"):
        lines += ["| layer type | instances | " + " | ".join(cols) + " |", "|---|---:|" + "---:|" * len(cols)]
        for kind, agg in d["by_kind"].items():
            lines.append(f"| {kind} | {agg['instances']} | " + " | ".join(fmt(agg[k]) for k in cols) + " |")
        lines += tail_rows(f"{sum(agg['instances'] for agg in d['by_kind'].values()):,}") + [""]
    lines += ["| layer | top | " + " | ".join(cols) + " | yosys s |", "|---|---|" + "---:|" * (len(cols) + 1)]
    for la in d["layers"]:
        name = la["name"] + (f" (x{la['copies']})" if la["copies"] != 1 else "")
        secs = "cached" if la.get("cached") else f"{la['seconds']:.1f}"
        lines.append(f"| {name} | `{la['top']}` | " + " | ".join(fmt(la["row"][k]) for k in cols) + f" | {secs} |")
    for f in d.get("failed", []):
        lines.append(f"| {f['name']} | | **not synthesized by yosys**: {f['reason']} |" + " |" * len(cols))
    lines += tail_rows("")[:1] + [""]
    lines.append("LUT counts every LUT site, logic and memory (LUTRAM: distributed RAM and SRL), as Vivado's "
                 "Slice LUTs do; BRAM36 counts a RAMB18 as one half. " + PRE_PNR_NOTE)
    others = {la["name"]: la["other"] for la in d["layers"] if la.get("other")}
    if others:
        lines += ["", "Cells not counted above: " + "; ".join(
            f"{name}: " + ", ".join(f"{c} x{k}" for c, k in o.items()) for name, o in others.items()) + "."]
    fixes = sorted({f for la in d["layers"] for f in la.get("fixes", [])})
    if fixes:
        why = {fix.name: fix.why for fix in SOURCE_FIXES}
        lines += ["", "Read by yosys with these source rewrites (hw/synth/staging.py SOURCE_FIXES; the simulated files are "
                      "unchanged): " + "; ".join(f"{f} ({why.get(f.split(' in ')[0], '?')})" for f in fixes) + "."]
    lines += [f"- {n}" for n in d.get("notes", [])]
    return lines


def budget_of(board_resources: dict[str, float], margin: float = 0.0) -> dict[str, float]:
    """The part of a board's resources (common.boards Board.resources) a design may use."""
    check_margin(margin)
    return {k: float(board_resources[k]) * (1 - margin) for k in RESOURCE_KINDS if k in board_resources}
