"""Paths as the benchmarks write them into bench/results: relative to the repository's root, so
committed results name no directory of the machine they ran on."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def repo_relative(path: str | Path) -> str:
    """``path`` from the repository's root when it lies inside it, else its file name."""
    p = Path(path).resolve()
    return str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else p.name
