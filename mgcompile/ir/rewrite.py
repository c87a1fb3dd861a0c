"""Helpers for passes that replace one node by a subgraph."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from mgcompile.ir.graph import Graph
from mgcompile.ir.roles import Role, keep_roles, move_roles


class Insertion:
    """Adds nodes that sort where ``anchor`` sorts, inheriting its ``meta`` (of its roles, the ``member`` ones:
    every node a level's step expands to is a ``level_body`` node; see :mod:`mgcompile.ir.roles`).

    Expanded subgraphs keep their macro's place in the deterministic node order, so
    printed graphs and generated code read top to bottom like the network.
    """

    def __init__(self, graph: Graph, anchor: str, **meta: Any) -> None:
        self.graph = graph
        self.anchor_name = anchor
        self.base = graph.order(anchor)
        self.meta = {**keep_roles(graph.meta(anchor), ("member",)), **meta}
        self.count = 0

    def add(self, name: str, op: str, inputs: list[str], *, meta: Mapping[str, Any] | None = None,
            roles: Iterable[Role] = (), **attrs: Any) -> str:
        """Add a node; ``roles``: the jobs it does for the anchor's step (``meta["step"]``, else the anchor)."""
        self.count += 1
        name = self.graph.add(name, op, inputs, meta={**self.meta, **(meta or {})},
                              order=self.base + (self.count,), **attrs)
        for role in roles:
            self.graph.set_role(name, role, self.step)
        return name

    @property
    def step(self) -> str:
        return self.meta.get("step", self.anchor_name)


def replace_node(graph: Graph, old: str, new: str) -> None:
    """Point every user of ``old`` at ``new``, give ``new`` the tensor's ``boundary`` roles (a step's input or
    output stays findable) and delete ``old``."""
    graph.replace_uses(old, new)
    move_roles(graph.meta(old), graph.meta(new))
    graph.remove(old)
