"""The Backend protocol: a thin renderer of the expanded IR, one per module of this package, discovered.

A backend lowers a fully expanded graph (no macros, shapes inferred) to something that
runs (``lower(graph) -> artifact``) and says which ``ir.ops`` lowering keys it implements;
``tests/ir/test_ops.py`` fails when a registered backend misses one of ``ir.ops.LOWERINGS``.
A module of ``mgcompile.backends`` that exposes ``backend`` is registered (like the CLI's
``command``); adding a backend means adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any, Mapping, Protocol

from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph

DEFAULT_BACKEND = "torch"


class Backend(Protocol):
    """IR -> artifact."""

    name: str

    def lowerings(self) -> frozenset[str]:
        """Every ``OpDef.lowering`` key this backend implements."""
        ...

    def lower(self, graph: Graph, *, opaque: Mapping[str, Any] | None = None) -> Any:
        """The artifact of expanded ``graph``; ``opaque`` maps each opaque node's ``target`` to what runs it."""
        ...


@cache
def backends() -> dict[str, Backend]:
    """Every registered backend by name (imports the modules of ``mgcompile.backends``)."""
    import mgcompile.backends as package

    found: dict[str, Backend] = {}
    for info in pkgutil.iter_modules(package.__path__):
        if info.name.startswith("_") or info.name == "backend":
            continue
        backend = getattr(importlib.import_module(f"{package.__name__}.{info.name}"), "backend", None)
        if backend is not None:
            found[backend.name] = backend
    return found


def get_backend(name: str = DEFAULT_BACKEND) -> Backend:
    """The backend called ``name`` (default: PyTorch)."""
    if name not in backends():
        raise MGCompileError(f"unknown backend {name!r}; use one of {', '.join(sorted(backends()))}")
    return backends()[name]
