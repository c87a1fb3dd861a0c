"""Run folders the benchmarks write under their ``--out``: removed before a rerun only if mgcompile wrote them."""

from __future__ import annotations

import shutil
from pathlib import Path


def clear(folder: Path) -> None:
    """Remove an earlier run's folder -- only one mgcompile wrote (it holds run.json or conversion.json)."""
    if not folder.exists():
        return
    if not ((folder / "run.json").is_file() or (folder / "conversion.json").is_file()):
        raise SystemExit(f"error: {folder} exists and was not written by mgcompile; pass another --out")
    shutil.rmtree(folder)
