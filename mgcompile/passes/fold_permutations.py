"""Fold a transfer's fixed channel permutation into its weights where that is exact (inference lowering).

Rewrite rules:

1. ``restrict`` with one group (a dense 1x1 on the permuted input, e.g. a 64-wide level
   with t = 32): the permutation moves into the weight's input columns and is dropped.
2. ``prolong`` with one group: the inverse permutation moves into the weight's output
   rows (and its bias) and is dropped.

A grouped transfer keeps its permutation: permuting the channels of a grouped conv would
break its groups (:mod:`mgcompile.passes.densify_transfers` trades that for zeros instead).
Recorded in ``meta["derive"]`` as ``{"permute_in": perm}`` / ``{"permute_out": perm}``.
"""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.passes.contract import contract


@contract(requires=("no_macros",), ensures=("permutations_folded",))
def fold_permutations(graph: Graph) -> Graph:
    g = graph.copy()
    for n in g.nodes():
        side = opdef(g.op(n)).permutation_side
        if side is None:
            continue
        a = g.attrs(n)
        if a["permutation"] is None or a["groups"] != 1:
            continue
        key = f"permute_{side}"
        g.meta(n).setdefault("derive", []).append({key: list(a["permutation"])})
        a["permutation"] = None
    return g
