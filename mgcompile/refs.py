"""Resolve what a user names on the command line (REF) to a spec, an IR and a module.

A REF is, in this order: a folder or ``.pt`` written by ``mgcompile convert``; a spec
file (``.yaml``/``.json``); a registry name, MG name or shipped spec name
(``mgcompile list``). The converter adds torchvision names and ``module:callable``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from mgcompile.api import build, expand, load, load_payload, spec_of
from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.registry import model_spec
from mgcompile.spec import Spec


@dataclass
class Resolved:
    """A resolved REF: its spec (when it has one), expanded IR, and a way to get the module."""

    ref: str
    kind: str  # "saved" | "spec" | "registry" | "torch"
    spec: Spec | None
    graph: Graph
    path: Path | None = None
    report: dict[str, Any] = field(default_factory=dict)
    _model: nn.Module | None = None

    def model(self) -> nn.Module:
        """The module (weights loaded for saved models; fresh, seeded init otherwise)."""
        if self._model is None:
            self._model = load(self.path) if self.kind == "saved" else build(self.graph)
        return self._model


def is_saved_model(ref: str) -> bool:
    p = Path(ref)
    return (p.is_dir() and (p / "model.pt").is_file()) or (p.is_file() and p.suffix == ".pt")


def resolve(ref: str, **overrides: Any) -> Resolved:
    """Resolve ``ref``; ``overrides`` are spec fields from CLI flags (``None`` = not given)."""
    overrides = {k: v for k, v in overrides.items() if v is not None}
    p = Path(ref)
    if is_saved_model(ref):
        if overrides:
            raise MGCompileError(
                f"{ref} is an already converted model; options {', '.join(sorted(overrides))} cannot change it. "
                "Convert the base network again with the new options"
            )
        graph = Graph.from_dict(load_payload(ref)["graph"])
        return Resolved(ref, "saved", spec_of(graph), graph, path=p)
    if p.is_dir():
        raise MGCompileError(f"{ref} is a folder without model.pt; pass a folder written by `mgcompile convert`")
    if p.suffix in (".yaml", ".yml", ".json") or p.is_file():
        spec = Spec.from_file(p)
        spec = spec.replace(**overrides) if overrides else spec
        return Resolved(ref, "spec", spec, expand(spec))
    spec = model_spec(ref, **overrides)
    return Resolved(ref, "registry", spec, expand(spec))
