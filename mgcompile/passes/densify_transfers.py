"""Write sparse transfers as plain dense 1x1 convs with zeros, where a target runs those faster (inference).

Rewrite rules (``max_expansion`` bounds the MACs a transfer may grow by):

1. ``restrict`` / ``prolong`` with a permutation and ``groups <= max_expansion`` becomes a
   ``conv`` (1x1, one group, bias as the transfer's): its weight is the block-diagonal of
   the grouped weight, scattered through the permutation (zeros elsewhere). Exactly the
   same map; ``groups`` times the transfer's MACs, but no channel Gather, which on ONNX
   Runtime's CPU provider forces layout reorders around it.

Recorded in ``meta["derive"]`` as ``{"densify": groups, "permute_in"|"permute_out": perm}``.
"""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.passes.contract import contract

DEFAULT_MAX_EXPANSION = 4


@contract(requires=("no_macros",))
def densify_transfers(graph: Graph, max_expansion: int = DEFAULT_MAX_EXPANSION) -> Graph:
    g = graph.copy()
    for n in g.nodes():
        side = opdef(g.op(n)).permutation_side
        if side is None:
            continue
        a = dict(g.attrs(n))
        if a["permutation"] is None or a["groups"] > max_expansion:
            continue
        key = f"permute_{side}"
        meta = dict(g.meta(n))
        meta["derive"] = [*meta.get("derive", []), {"densify": a["groups"]}, {key: list(a["permutation"])}]
        g.nx.nodes[n]["op"] = "conv"
        g.nx.nodes[n]["attrs"] = {"in_channels": a["in_channels"], "out_channels": a["out_channels"], "kernel": 1,
                                  "stride": 1, "padding": 0, "groups": 1, "bias": a["bias"]}
        g.nx.nodes[n]["meta"] = meta
    return g
