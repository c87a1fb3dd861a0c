"""Trained weights from a file, in the forms people save them, loaded with one-line errors.

A weights file is a ``state_dict`` saved with ``torch.save``, a checkpoint dict holding
one under ``state_dict`` / ``model`` / ``model_state_dict`` (what training scripts
write), or a ``.safetensors`` file. A ``module.`` prefix on every key (a model saved
inside ``DistributedDataParallel``) is stripped. Files are read with
``weights_only=True``: nothing in them is executed.

Used by ``convert --weights`` (:func:`mgcompile.refs.resolve`), ``train
--teacher-weights`` and :func:`mgcompile.original.load_original`.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mgcompile.errors import MGCompileError, first_line

CHECKPOINT_KEYS = ("state_dict", "model", "model_state_dict")
_DDP_PREFIX = "module."
_FIX = "save the trained network's model.state_dict() with torch.save (or as .safetensors)"


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The tensors of the weights file ``path`` (see the module docstring), keyed as the model names them."""
    p = Path(path)
    if not p.is_file():
        what = "is a folder" if p.is_dir() else "does not exist"
        raise MGCompileError(f"weights file {p} {what}; pass a state_dict file (.pt/.pth/.safetensors)")
    try:
        safetensors = _is_safetensors(p)
    except OSError as exc:
        raise MGCompileError(f"cannot read weights file {p} ({exc.strerror or exc}); make it readable") from None
    data = _read_safetensors(p) if safetensors else _read_torch(p)
    return _without_ddp_prefix(_tensors_of(data, p))


def _is_safetensors(p: Path) -> bool:
    """By suffix, or by content: an 8-byte header length then the JSON header (a renamed file still reads)."""
    if p.suffix == ".safetensors":
        return True
    with p.open("rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{" and 0 < int.from_bytes(head[:8], "little") < p.stat().st_size


def _read_safetensors(p: Path) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError:
        raise MGCompileError(f"reading {p} needs the safetensors package, which is not installed; "
                             "pip install safetensors") from None
    try:
        return load_file(p, device="cpu")
    except Exception as exc:  # safetensors raises its own error type for truncated or garbage files
        raise MGCompileError(f"{p} is not a readable safetensors file ({first_line(exc, 100)}); {_FIX}") from None


def _read_torch(p: Path) -> Any:
    try:
        with warnings.catch_warnings():  # a TorchScript archive makes torch.load warn before failing
            warnings.simplefilter("ignore")
            return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated, garbage or pickled-object files
        raise MGCompileError(f"{p} is corrupt or holds more than tensors ({type(exc).__name__}: "
                             f"{first_line(exc, 80)}); {_FIX}") from None


def _is_tensor_dict(data: Any) -> bool:
    return isinstance(data, Mapping) and bool(data) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in data.items())


def _tensors_of(data: Any, p: Path) -> dict[str, torch.Tensor]:
    """The state_dict in ``data``: ``data`` itself, or a checkpoint's entry under one of :data:`CHECKPOINT_KEYS`."""
    if _is_tensor_dict(data):
        return dict(data)
    if isinstance(data, Mapping):
        for key in CHECKPOINT_KEYS:
            if _is_tensor_dict(data.get(key)):
                return dict(data[key])
        held = f"a dict with keys {', '.join(map(str, list(data)[:5]))}" if data else "an empty dict"
    else:
        held = type(data).__name__
    raise MGCompileError(f"{p} holds no state_dict ({held}; expected a dict of tensors, or a checkpoint holding one "
                         f"under {'/'.join(CHECKPOINT_KEYS)}); {_FIX}")


def _without_ddp_prefix(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Keys saved from inside DistributedDataParallel (all ``module.*``) as the bare model names them."""
    if all(k.startswith(_DDP_PREFIX) for k in state):
        return {k[len(_DDP_PREFIX):]: v for k, v in state.items()}
    return state


def fit_problems(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str:
    """What keeps ``given`` from loading into a model whose state_dict is ``expected`` ('' when it fits):
    the first missing, unexpected and mis-shaped key and how many of each, in one line."""
    missing = [k for k in expected if k not in given]
    unexpected = [k for k in given if k not in expected]
    misshaped = [k for k in expected if k in given and tuple(given[k].shape) != tuple(expected[k].shape)]
    parts = []
    if missing:
        parts.append(f"{len(missing)} key(s) missing (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected (first {unexpected[0]})")
    if misshaped:
        k = misshaped[0]
        parts.append(f"{len(misshaped)} mis-shaped (first {k}: file {tuple(given[k].shape)}, "
                     f"model {tuple(expected[k].shape)})")
    return "; ".join(parts)


def load_weights(model: nn.Module, path: str | os.PathLike, what: str) -> None:
    """Load the weights file ``path`` into ``model`` (strict), checked first so a misfit is one line.

    ``what`` names the option the file came from (``--weights``, ``--teacher-weights``) in errors."""
    state = read_state_dict(path)
    problems = fit_problems(model.state_dict(), state)
    if problems:
        raise MGCompileError(f"{what} {path} does not fit {type(model).__name__}: {problems}; pass the state_dict "
                             "of this exact model (same architecture, --num-classes and input channels)")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:  # keys and shapes fit; e.g. a module's extra state refused the file's
        raise MGCompileError(f"{what} {path} does not load into {type(model).__name__} "
                             f"({first_line(exc, 120)}); pass the state_dict of this exact model") from None


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in chunks (weights files can be gigabytes)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
