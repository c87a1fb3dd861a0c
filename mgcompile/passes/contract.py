"""Pass contracts: what an IR pass requires of its input graph and ensures of its output.

A pass stays a plain ``Graph -> Graph`` function; :func:`contract` only labels it
(``fn.requires``, ``fn.ensures``: names of :data:`CONDITIONS`). ``run_passes`` checks
the requirements before the pass and the guarantees after it (like onnx-ir's
``requires``/``ensures``): either failing is an :class:`~mgcompile.errors.InternalError`
naming the pass and the condition, since a pass run in the wrong place, or one that
does not do its job, is mgcompile's bug.
"""

from __future__ import annotations

from typing import Callable, Iterable, TypeVar

from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.ir.roles import Role, has_role

F = TypeVar("F", bound=Callable)


# The checks scan the node table unordered: they run around every pass, and a topological order
# (``Graph.nodes``) would cost more than the passes they guard.
def _data(g: Graph):
    return g.nx.nodes(data=True)


def _no_macros(g: Graph) -> bool:
    return not any(opdef(d["op"]).macro for _, d in _data(g))


def _shapes_inferred(g: Graph) -> bool:
    return all(d["shape"] is not None for _, d in _data(g))


def _not_cycled(g: Graph) -> bool:
    return not any(has_role(d["meta"], Role.LEVEL_BODY) for _, d in _data(g))


def _steps_planned(g: Graph) -> bool:
    meta = g.meta_graph
    return meta.multigrid is None or all(n in meta.steps or has_role(d["meta"], Role.LEVEL_BODY)
                                         for n, d in _data(g) if d["op"] == "residual")


def _bn_folded(g: Graph) -> bool:
    return not any(opdef(g.op(src := g.inputs(bn)[0])).absorbs_bn and g.users(src) == [bn]
                   for bn, d in _data(g) if d["op"] == "batchnorm")


def _permutations_folded(g: Graph) -> bool:
    return not any(opdef(d["op"]).permutation_side and d["attrs"]["permutation"] is not None
                   and d["attrs"]["groups"] == 1 for _, d in _data(g))


#: Condition name -> (check, what it means).
CONDITIONS: dict[str, tuple[Callable[[Graph], bool], str]] = {
    "no_macros": (_no_macros, "no residual or transition macro is left"),
    "shapes_inferred": (_shapes_inferred, "every node has its shape"),
    "not_cycled": (_not_cycled, "no step has been turned into an MG cycle yet"),
    "steps_planned": (_steps_planned, "with MG parameters, every step left has a status (cycle, kept, ...)"),
    "bn_folded": (_bn_folded, "no BN is left after a conv or prolongation that feeds it alone"),
    "permutations_folded": (_permutations_folded, "no one-group transfer keeps a permutation"),
}


def contract(*, requires: Iterable[str] = (), ensures: Iterable[str] = ()) -> Callable[[F], F]:
    """Label a pass with the conditions it requires and ensures (names of :data:`CONDITIONS`)."""
    requires, ensures = tuple(requires), tuple(ensures)
    unknown = set(requires + ensures) - set(CONDITIONS)
    if unknown:
        raise ValueError(f"unknown pass condition(s) {', '.join(sorted(unknown))}; known: {', '.join(CONDITIONS)}")

    def label(fn: F) -> F:
        fn.requires, fn.ensures = requires, ensures  # type: ignore[attr-defined]
        return fn

    return label


def unmet(graph: Graph, conditions: Iterable[str]) -> str | None:
    """The first of ``conditions`` that ``graph`` does not meet, described; ``None`` when it meets them all."""
    for name in conditions:
        check, what = CONDITIONS[name]
        if not check(graph):
            return f"{name} ({what})"
    return None
