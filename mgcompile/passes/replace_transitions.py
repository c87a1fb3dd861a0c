"""Replace channel-doubling strided steps by the MG stage transition.

Rewrite rules (only when the graph carries MG parameters and ``transition`` is
``paper`` or ``dw_stride``):

1. A ``residual`` step N of a kind that allows it (``StepKind.transition``: basic) with
   stride 2 and ``out == 2 * in`` becomes
   ``transition(mode) -> residual(out, stride 1)``, the transition named ``N.transition`` (role ``transition``
   for step ``N``; N's input stays N's ``step_input``: the MG step N is the transition and the cycle
   after it): the transition doubles the
   channels and halves H, W; the constant-width step after it is then cycled like
   every other step (its body rebuilt from its template at stride 1), so a stage of n
   blocks has n cycles.
2. Every other channel-changing step (bottlenecks, ratios other than 2, steps the user
   excluded in ``meta_graph.skip``) is kept and noted: ``keep`` semantics.
"""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.ir.rewrite import Insertion
from mgcompile.ir.roles import Role
from mgcompile.steps import STEP_KINDS, remake
from mgcompile.passes.contract import contract
from mgcompile.passes.infer_shapes import infer_shapes


@contract(requires=("not_cycled",))
def replace_transitions(graph: Graph) -> Graph:
    mg = graph.meta_graph.multigrid
    if mg is None or mg.transition == "keep":
        return graph
    g = graph.copy()
    shapes = infer_shapes(g)
    for name in g.nodes("residual"):
        a = g.attrs(name)
        if a["in_channels"] == a["out_channels"] and a["stride"] == 1:
            continue
        if name in g.meta_graph.skip:
            g.meta_graph.notes.append(f"{name}: {g.meta_graph.skip[name]}: strided step kept")
            continue
        kind = STEP_KINDS.get(a["kind"])
        if kind is not None and kind.transition and a["stride"] == 2 and a["out_channels"] == 2 * a["in_channels"]:
            t = Insertion(g, name).add(f"{name}.transition", "transition", g.inputs(name),
                                       meta={"step": f"{name}.transition"}, roles=[Role.TRANSITION],
                                       mode=mg.transition, in_channels=a["in_channels"],
                                       **_odd(shapes.shape(g.inputs(name)[0])))
            g.set_inputs(name, [t])
            a.update(remake(a, in_channels=a["out_channels"], stride=1))
        else:
            g.meta_graph.notes.append(
                f"{name}: channel-changing {a['kind']} step {a['in_channels']}->{a['out_channels']} kept as in the base network"
            )
    return g


def _odd(shape: tuple[int, int, int]) -> dict[str, bool]:
    """``ceil_mode`` where the input is odd-sized: the transition then keeps the strided step's output size."""
    return {"ceil_mode": True} if shape[1] % 2 or shape[2] % 2 else {}
