"""Helpers for passes that replace one node by a subgraph."""

from __future__ import annotations

from typing import Any, Mapping

from mgcompile.ir.graph import Graph


class Insertion:
    """Adds nodes that sort where ``anchor`` sorts, inheriting its ``meta``.

    Expanded subgraphs keep their macro's place in the deterministic node order, so
    printed graphs and generated code read top to bottom like the network.
    """

    def __init__(self, graph: Graph, anchor: str, **meta: Any) -> None:
        self.graph = graph
        self.base = graph.order(anchor)
        self.meta = {**graph.meta(anchor), **meta}
        self.count = 0

    def add(self, name: str, op: str, inputs: list[str], *, meta: Mapping[str, Any] | None = None, **attrs: Any) -> str:
        self.count += 1
        return self.graph.add(name, op, inputs, meta={**self.meta, **(meta or {})},
                              order=self.base + (self.count,), **attrs)


def replace_node(graph: Graph, old: str, new: str) -> None:
    """Point every user of ``old`` at ``new`` and delete ``old``."""
    graph.replace_uses(old, new)
    graph.remove(old)
