"""What a well-formed graph is. ``verify`` runs after every pass (see ``passes.pipeline``)."""

from __future__ import annotations

import networkx as nx

from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.ir.body import check_step
from mgcompile.ir.ops import OPS, normalize_attrs


def verify(graph: Graph, *, allow_macros: bool = True) -> Graph:
    """Check acyclicity, arity, attribute types, group divisibility, names and shapes.

    Shapes already stored on nodes must equal what the op rules infer from their
    inputs (so a pass that rewires a graph without re-running inference is caught).
    Raises :class:`GraphError` naming the first bad node; returns the graph.
    """
    g = graph.nx
    if not nx.is_directed_acyclic_graph(g):
        cycle = nx.find_cycle(g)
        raise GraphError(f"graph has a cycle through {cycle[0][0]!r}")
    if not graph.nodes("input"):
        raise GraphError("graph has no input node")
    if len(graph.nodes("output")) != 1:
        raise GraphError("graph must have exactly one output node")
    inferred: dict[str, tuple[int, int, int]] = {}
    for name in graph.nodes():
        op = graph.op(name)
        d = OPS.get(op)
        if d is None:
            raise GraphError(f"node {name!r} has unknown op {op!r}")
        if d.macro and not allow_macros:
            raise GraphError(f"node {name!r} is an unexpanded {op} macro; run expand_steps first")
        attrs = graph.attrs(name)
        if normalize_attrs(op, attrs) != attrs:
            raise GraphError(f"node {name!r} attributes do not match the {op} schema")
        inputs = graph.inputs(name)
        lo, hi = d.arity
        if len(inputs) < lo or (hi is not None and len(inputs) > hi):
            raise GraphError(f"node {name!r} ({op}) takes {lo}..{hi if hi is not None else 'n'} inputs, has {len(inputs)}")
        if set(inputs) != set(g.predecessors(name)):
            raise GraphError(f"node {name!r}: inputs list and edges disagree")
        _check_groups(name, op, attrs)
        try:
            shape = d.infer(attrs, [inferred[i] for i in inputs])
        except GraphError as exc:
            raise type(exc)(f"node {name!r}: {exc}") from None
        stored = g.nodes[name]["shape"]
        if stored is not None and tuple(stored) != tuple(shape):
            raise GraphError(f"node {name!r} stores shape {tuple(stored)} but its inputs give {tuple(shape)}")
        inferred[name] = tuple(shape)
    _check_names(graph)
    return graph


def _check_groups(name: str, op: str, attrs: dict) -> None:
    d = OPS[op]
    if d.grouped:
        groups = attrs["groups"]
        for key in ("in_channels", "out_channels"):
            if groups < 1 or attrs[key] % groups:
                raise GraphError(f"node {name!r}: groups={groups} does not divide {key}={attrs[key]}")
        perm = attrs.get("permutation")
        if perm is not None:
            width = attrs[f"{d.permutation_side}_channels"]
            if sorted(perm) != list(range(width)):
                raise GraphError(f"node {name!r}: permutation is not a permutation of {width} channels")
    if op == "residual":
        check_step(name, attrs)


def _check_names(graph: Graph) -> None:
    """A parametric node's name becomes a module path: no such name may prefix another."""
    names = sorted(n for n in graph.nx.nodes if OPS[graph.op(n)].parametric)
    for a, b in zip(names, names[1:]):
        if b.startswith(a + "."):
            raise GraphError(f"module name {a!r} is a prefix of {b!r}; rename one of them")
