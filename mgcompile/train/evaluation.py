"""Evaluate a trained run or any REF on a data set split (top-1 / top-5)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from mgcompile.errors import MGCompileError
from mgcompile.train.checkpoint import CHECKPOINT_FILE, read_checkpoint
from mgcompile.train.data import load_source, make_splits
from mgcompile.progress import logger
from mgcompile.train.loop import evaluate, flush_denormals, make_loader, pick_device, pick_precision


def evaluate_ref(ref: str, data: str | None = None, *, data_dir: str | None = None, split: str = "test",
                 batch_size: int = 256, device: str = "auto", overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Top-1/top-5 of REF (a run folder, converted folder, spec or registry name) on ``data``'s ``split``.

    A run folder supplies its data set and split settings from run.json, and its
    weights from model.pt (finished) or checkpoint.pt (interrupted).
    """
    run = Path(ref)
    if (ref.endswith(("/", ".pt")) or os.sep in ref) and not run.exists():
        raise MGCompileError(f"{ref} does not exist; pass a run folder (mgcompile train --out), a converted folder or a model name")
    info: dict[str, Any] = {}
    if (run / "run.json").is_file():
        try:
            info = json.loads((run / "run.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise MGCompileError(f"{run / 'run.json'} is damaged ({exc}); pass --data explicitly or re-run the training") from None
    data = data or info.get("data")
    if data is None:
        if run.is_dir() and not (run / "model.pt").is_file() and not (run / CHECKPOINT_FILE).is_file():
            raise MGCompileError(f"{ref} is a folder without model.pt or {CHECKPOINT_FILE}; pass a run folder "
                                 "(mgcompile train --out) or a converted folder")
        if not run.exists() and ("/" in ref or ref.startswith(".")):
            raise MGCompileError(f"{ref} does not exist; pass a run folder (mgcompile train --out), a converted folder "
                                 "or a model name with --data")
        raise MGCompileError(f"pass --data for {ref} (digits, mnist, fashion-mnist, cifar10, cifar100, imagefolder:PATH)")
    source = load_source(data, data_dir or info.get("data_dir"))
    val_fraction = info.get("recipe", {}).get("val_fraction", 0.1)
    if run.is_dir() and not (run / "model.pt").is_file() and (run / CHECKPOINT_FILE).is_file():
        model, size = _from_checkpoint(run / CHECKPOINT_FILE, source)
    else:
        from mgcompile.train.run import input_size_of, model_for_data

        resolved = model_for_data(ref, source, overrides or {})
        model, size = resolved.model(), input_size_of(resolved)
    if info.get("data") not in (None, data):
        logger.warning(f"note: {ref} was trained on {info['data']}; scoring it on {data}")
    splits = make_splits(source, size, val_fraction=val_fraction)
    dataset = {"test": splits.test, "val": splits.val, "train": splits.train}[split]
    if dataset is None:
        raise MGCompileError(f"{ref} was trained without a validation split; use --split test")
    dataset.train = False  # no augmentation when scoring the training split
    dev = pick_device(device)
    flush_denormals(dev)
    result = evaluate(model.to(dev), make_loader(dataset, batch_size, dev, None), dev, pick_precision(dev, True), False)
    return {"ref": ref, "data": data, "split": split, **result}


def _from_checkpoint(path: Path, source) -> tuple[torch.nn.Module, tuple[int, int]]:
    from mgcompile.api import build
    from mgcompile.ir.graph import Graph
    from mgcompile.train.run import check_fits

    ckpt = read_checkpoint(path)
    graph = Graph.from_dict(ckpt["graph"])
    check_fits(graph, source, str(path.parent))
    model = build(graph)
    model.load_state_dict(ckpt["model"])
    return model, tuple(graph.input_shape()[1:])
