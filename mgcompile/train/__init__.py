"""Training: data sets, the loop, checkpoints, distributed runs.

Importing the package registers a run folder's file set with :mod:`mgcompile.provenance`
(what ``train --out`` may replace, what makes ``convert -o`` refuse a folder, how a
``metrics.csv`` is recognised as mgcompile's).
"""

from __future__ import annotations

from pathlib import Path

from mgcompile.provenance import register_file_set
from mgcompile.train.metrics import COLUMNS

TRAIN_FILES = ("run.json", "checkpoint.pt", "metrics.csv", "metrics.jsonl", "results.json", "model.pt", "curves.png")
# what only a training run folder holds (convert -o refuses such a folder)
TRAIN_MARKERS = ("checkpoint.pt", "run.json", "metrics.jsonl", "results.json")


def _metrics_csv(p: Path) -> bool:
    with p.open() as f:
        return f.readline().strip() == ",".join(COLUMNS)


RUN_FOLDER = register_file_set("train", TRAIN_FILES, markers=TRAIN_MARKERS, what="a training run folder",
                               checks={".csv": _metrics_csv})
