"""The Python API that the CLI mirrors: expand, build, save, load."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from mgcompile import __version__
from mgcompile.atomic import atomic_path
from mgcompile.errors import MGCompileError, first_line
from mgcompile.frontends import graph_from_spec
from mgcompile.ir.graph import Graph
from mgcompile.passes.pipeline import run_passes
from mgcompile.spec import Spec
from mgcompile.backends.torch_module import attach, lower_to_torch

MODEL_FORMAT = "mgcompile-model"
MODEL_FILE = "model.pt"


def expand(spec: Spec) -> Graph:
    """Compile a spec to the fully expanded IR (primitive ops, shapes inferred, verified)."""
    return run_passes(graph_from_spec(spec))


def build(spec_or_graph: Spec | Graph, *, opaque: Mapping[str, nn.Module] | None = None) -> nn.Module:
    """Lower a spec (or an expanded IR) to a ``torch.fx.GraphModule``."""
    if isinstance(spec_or_graph, Spec):
        graph, spec = expand(spec_or_graph), spec_or_graph
    else:
        graph = spec_or_graph
        spec = spec_of(graph)
    return attach(lower_to_torch(graph, opaque=opaque), graph, spec)


def spec_of(graph: Graph) -> Spec | None:
    data = graph.meta_graph.get("spec")
    return Spec.from_dict(data) if data else None


def save(model: nn.Module, path: str | os.PathLike, graph: Graph | None = None) -> Path:
    """Save IR + state dict (+ spec) to ``path`` (a ``.pt`` file, or a folder -> ``folder/model.pt``).

    No classes are pickled: :func:`load` rebuilds the module from the IR, so the file
    loads with ``torch.load(weights_only=True)``. The write is atomic.
    """
    graph = graph if graph is not None else getattr(model, "mg_graph", None)
    if graph is None:
        raise MGCompileError("this module has no mgcompile IR; build it with mgcompile.build/convert, or pass graph=")
    target = Path(path)
    if target.suffix != ".pt":
        target = target / MODEL_FILE
    payload = {
        "format": MODEL_FORMAT,
        "mgcompile_version": __version__,
        "graph": graph.to_dict(),
        "opaque": dict(graph.meta_graph.get("opaque", {})),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    with atomic_path(target) as tmp:
        torch.save(payload, tmp)
    return target


def load_payload(path: str | os.PathLike) -> dict[str, Any]:
    """Read and check a saved model file; one clear error for missing or corrupt files."""
    p = Path(path)
    if p.is_dir():
        p = p / MODEL_FILE
    if not p.is_file():
        raise MGCompileError(f"{p} does not exist; pass a folder written by `mgcompile convert` or its model.pt")
    try:
        with warnings.catch_warnings():  # a TorchScript archive makes torch.load warn before failing
            warnings.simplefilter("ignore")
            payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for truncated/garbage files
        raise MGCompileError(f"{p} is corrupt or not an mgcompile model ({type(exc).__name__}); "
                             "pass a folder written by `mgcompile convert` or `mgcompile train`") from None
    if not isinstance(payload, dict) or payload.get("format") != MODEL_FORMAT:
        raise MGCompileError(f"{p} is not an mgcompile model file; pass a folder written by `mgcompile convert`")
    return payload


def load(path: str | os.PathLike, *, opaque: Mapping[str, nn.Module] | None = None) -> nn.Module:
    """Rebuild a saved model from its IR and load its weights (the sparse permutations come from the file)."""
    payload = load_payload(path)
    graph = Graph.from_dict(payload["graph"])
    if opaque is None and payload.get("opaque"):
        from mgcompile.frontends.opaque import rebuild_opaque_modules

        opaque = rebuild_opaque_modules(payload["opaque"])
    model = build(graph, opaque=opaque)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        first = first_line(exc)
        raise MGCompileError(f"{path}: weights do not match the stored IR ({first}); the file is damaged") from None
    return model
