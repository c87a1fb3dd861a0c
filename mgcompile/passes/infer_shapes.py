"""Shape inference: store each node's (C, H, W) from its inputs and the op rules."""

from __future__ import annotations

from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.passes.contract import contract


@contract(ensures=("shapes_inferred",))
def infer_shapes(graph: Graph) -> Graph:
    """Return a copy of ``graph`` with every node's ``shape`` set (input first, then topological)."""
    g = graph.copy()
    for name in g.nodes():
        d = opdef(g.op(name))
        try:
            shape = d.infer(g.attrs(name), [g.shape(i) for i in g.inputs(name)])
        except GraphError as exc:
            raise GraphError(f"node {name!r}: {exc}") from None
        g.set_shape(name, shape)
    return g
