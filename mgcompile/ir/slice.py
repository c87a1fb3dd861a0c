"""Cut one residual step out of a network as a network of its own.

Per-step measurements (is this step's MG cycle faster than its base step on a target?)
need the step alone: one ``input`` node standing for what feeds the step, its nodes
copied with their attributes and meta, one ``output`` node after the node the rest of
the network reads. Every backend then lowers the slice like any network.
"""

from __future__ import annotations

from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.ir.meta import GraphMeta


def step_graph(graph: Graph, step: str) -> Graph:
    """The nodes of ``step`` between a new ``input`` and ``output`` node (``graph`` needs shapes).

    Parts tagged ``<step>.<part>`` belong to the step: an MG transition
    (``stage2.block0.transition``) replaced the strided half of the base step
    ``stage2.block0``, so the slices of both read the same input. A step reads exactly
    one tensor from outside and hands exactly one on: a step that does not (none in
    mgcompile's step shapes) is refused rather than cut wrongly.
    """
    members = [n for n in graph.nodes() if (tag := graph.meta(n).get("step")) is not None
               and (tag == step or tag.startswith(step + "."))]
    if not members:
        raise GraphError(f"the network has no step named {step!r}")
    inside = set(members)
    feeds = sorted({i for n in members for i in graph.inputs(n) if i not in inside}, key=graph.order)
    outs = [n for n in members if any(u not in inside for u in graph.users(n))]
    if len(feeds) != 1 or len(outs) != 1:
        raise GraphError(f"step {step!r} reads {len(feeds)} and hands on {len(outs)} tensors; "
                         "only a step with one input and one output can be cut out")
    (feed,), (last,) = feeds, outs
    c, h, w = graph.shape(feed)
    sliced = Graph(GraphMeta(spec=graph.meta_graph.spec, sliced_step=step))
    sliced.add("input", "input", channels=c, height=h, width=w, order=(-1,))
    for n in members:
        sliced.add(n, graph.op(n), ["input" if i == feed else i for i in graph.inputs(n)], meta=graph.meta(n),
                   order=graph.order(n), **graph.attrs(n))
        sliced.set_shape(n, graph.shape(n))
    sliced.set_shape("input", (c, h, w))
    sliced.add("output", "output", [last], order=graph.order(last) + (1 << 30,))
    sliced.set_shape("output", graph.shape(last))
    return sliced
