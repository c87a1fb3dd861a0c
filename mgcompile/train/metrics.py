"""Per-epoch metrics files of a run: RUN_DIR/metrics.csv and RUN_DIR/metrics.jsonl.

The history lives in the checkpoint and both files are rewritten from it atomically
after each checkpoint, so they never disagree with it, even after a SIGKILL.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any, Sequence

from mgcompile.atomic import atomic_write_text
from mgcompile.errors import MGCompileError

COLUMNS = ("epoch", "lr", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "images_per_s", "epoch_s")


def write_metrics(run_dir: str | Path, history: Sequence[dict[str, Any]]) -> None:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in history:
        writer.writerow({k: row.get(k, "") for k in COLUMNS})
    atomic_write_text(Path(run_dir) / "metrics.csv", out.getvalue())
    atomic_write_text(Path(run_dir) / "metrics.jsonl", "".join(json.dumps(row) + "\n" for row in history))


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    p = Path(run_dir) / "metrics.jsonl"
    if not p.is_file():
        raise MGCompileError(f"{p} does not exist; pass a folder written by `mgcompile train` that finished an epoch")
    try:
        return [json.loads(line) for line in p.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise MGCompileError(f"{p} is damaged ({exc}); it is rewritten from the checkpoint by `mgcompile train --resume`") from None
