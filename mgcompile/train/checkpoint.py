"""Checkpoints that never lose work.

A checkpoint holds everything needed to continue a run bit for bit: the IR and spec,
model, optimizer, scheduler and grad-scaler states, the torch/CUDA/numpy/python RNG
states, the epoch, the number of batches done in it (the sampler's resume point) and
the metrics history. It is written to a temporary file, read back, and only then
renamed over the previous one, so a crash, a full disk or a corrupt write never
replaces a good checkpoint. Files load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

from mgcompile.atomic import atomic_path
from mgcompile.errors import MGCompileError

CHECKPOINT_FORMAT = "mgcompile-checkpoint"
CHECKPOINT_FILE = "checkpoint.pt"
# Spec fields that do not change the network (a run may rename it).
_COSMETIC = ("name", "paper")


def capture_rng() -> dict[str, Any]:
    """Every random state a training step reads, in a form ``weights_only`` loading accepts."""
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(_plain, np_state[2:])],
        "python": _plain(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: Mapping[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    kind, key, *rest = state["numpy"]
    np.random.set_state((kind, key.numpy().astype(np.uint32), *rest))
    random.setstate(_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _tuples(value: Any) -> Any:
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Write ``state`` atomically; refuse non-finite weights; verify the written file before it replaces the old one."""
    target = Path(path)
    for name, tensor in state["model"].items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise MGCompileError(f"refusing to checkpoint non-finite weights ({name}); the last good {target} is kept")
    payload = {"format": CHECKPOINT_FORMAT, **state}
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
        read_checkpoint(tmp)  # raises before the rename if what was written cannot be read back
    return target


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Load a checkpoint; one clear line for a missing, corrupt or foreign file."""
    p = Path(path)
    if not p.is_file():
        raise MGCompileError(f"no checkpoint at {p}; start without --resume, or pass the run folder that has {CHECKPOINT_FILE}")
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated zip, garbage bytes, pickle errors: many exception types
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:100]
        raise MGCompileError(
            f"checkpoint {p} is corrupt ({first}); it was left untouched: restore it or start a new run with another --out"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != CHECKPOINT_FORMAT:
        raise MGCompileError(f"{p} is not an mgcompile training checkpoint; pass the checkpoint.pt of a `mgcompile train` run")
    return payload


def check_same_network(ckpt: Mapping[str, Any], spec_dict: Mapping[str, Any] | None, graph_dict: Mapping[str, Any], where: str) -> None:
    """Refuse to resume a checkpoint written for another network (one line naming what differs)."""
    old_spec = ckpt.get("spec")
    if old_spec is not None and spec_dict is not None:
        diff = sorted(k for k in set(old_spec) | set(spec_dict)
                      if k not in _COSMETIC and old_spec.get(k) != spec_dict.get(k))
        if diff:
            detail = ", ".join(f"{k} {old_spec.get(k)!r} vs {spec_dict.get(k)!r}" for k in diff[:4])
            raise MGCompileError(
                f"checkpoint {where} is from a different network ({detail}); resume with the same REF and options, or use a new --out"
            )
    if ckpt.get("graph", {}).get("nodes") != graph_dict.get("nodes"):
        raise MGCompileError(f"checkpoint {where} is from a different network (its IR differs); resume with the same REF, "
                             "or use a new --out")
