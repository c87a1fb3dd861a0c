"""Export targets: where an artifact will run, one file per target, discovered like the CLI commands.

Each module of this package (not starting with ``_``) is one target and exposes ``target``,
a :class:`Target` record; its file name is the target's name (``ort_cpu.py`` -> ``ort-cpu``).
:func:`names` is the names-only index: it lists the files without importing them, so the
CLI's ``--target`` choices cost nothing at start-up. Records import torch, onnx and ONNX
Runtime only inside their functions, so importing one stays cheap too.
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from mgcompile.errors import MGCompileError

if TYPE_CHECKING:
    import torch
    from torch import nn

    from mgcompile.ir.graph import Graph


@dataclass(frozen=True)
class Lowering:
    """The inference lowering's options for a target (:func:`mgcompile.backends.inference.lower_for_inference`)."""

    transfers: str  # "gather" (index + grouped conv) or "dense" (one dense 1x1 with zeros)
    max_expansion: int  # "dense": only transfers of at most this many groups (MACs grow by the group count)


@dataclass(frozen=True)
class ExportJob:
    """One export, as a target's writer and verifier see it (``path`` is the temporary file being written)."""

    fmt: str
    model: nn.Module  # as given, eval mode: what the artifact is verified against
    artifact: nn.Module  # lowered for the target: what is exported
    example: torch.Tensor  # the traced input
    input_shape: tuple[int, ...]
    path: Path
    opset: int
    dynamic_batch: bool
    optimize: bool
    in_memory_checks: bool  # the weights are small enough for passes checked through an in-memory copy
    external: bool  # ONNX: the weights in ``<path>.data`` beside the model
    metadata: Mapping[str, Any]  # stored in the artifact beside mgcompile's mark
    reference: Mapping[str, torch.Tensor] | None  # a saved model's input and output, which the artifact must reproduce
    batches: tuple[int, ...]  # the batch sizes verification runs


#: (graph, batch, a scratch file path, threads) -> a zero-argument callable that runs the graph once
LatencyRunner = Callable[["Graph", int, Path, "int | None"], Callable[[], Any]]


@dataclass(frozen=True)
class Target:
    """One export target: what it takes, how mgcompile lowers for it, how its artifact is written and checked."""

    name: str
    formats: tuple[str, ...]  # the formats it exports; the last is its default
    lowering: Lowering
    note: str  # said in the export report's ``lowering`` (empty: nothing to say)
    write: Callable[[ExportJob], dict[str, Any]]  # writes ``job.path``; returns the report's entries
    verify: Callable[[ExportJob], dict[str, Any]]  # the written file against ``job.model``
    latency_runner: LatencyRunner | None = None  # per-step timing for ``convert --latency-aware``; None: not offered


def module_name(name: str) -> str:
    """The file (module) of target ``name``: ``ort-cpu`` -> ``ort_cpu``."""
    return name.replace("-", "_")


def names() -> tuple[str, ...]:
    """Every target's name, from the file names alone (no record is imported)."""
    return tuple(sorted(info.name.replace("_", "-") for info in pkgutil.iter_modules(__path__)
                        if not info.name.startswith("_")))


@cache
def get(name: str) -> Target:
    """The record of target ``name`` (imports its file)."""
    if name not in names():
        raise MGCompileError(f"unknown target {name!r}; use one of {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{module_name(name)}").target


def targets() -> tuple[Target, ...]:
    """Every target's record, in :func:`names` order."""
    return tuple(get(n) for n in names())


def formats() -> tuple[str, ...]:
    """Every format some target exports, in target order."""
    return tuple(dict.fromkeys(f for t in targets() for f in t.formats))


def targets_of(fmt: str) -> tuple[str, ...]:
    """The targets that export ``fmt`` (the first is its default target)."""
    return tuple(t.name for t in targets() if fmt in t.formats)


def latency_targets() -> tuple[str, ...]:
    """The targets ``convert --latency-aware`` can time steps on."""
    return tuple(t.name for t in targets() if t.latency_runner is not None)
