"""Fold inference-mode BatchNorm into the op that feeds it (for exports and eager inference only).

Rewrite rules (``bn`` a ``batchnorm`` whose input is used by nothing else, and that input an op that
``absorbs_bn``: conv and prolong):

1. ``conv -> bn``: the conv gets ``bias=True`` and the BN is removed.
2. ``prolong -> bn`` (the BN after P, through P's permutation): the prolongation gets
   ``bias=True`` and the BN is removed; its per-channel scale and shift are applied in
   the conv's channel order, before P's inverse permutation, so the Gather stays exact.

The folded node records the arithmetic in ``meta["derive"]`` (``{"bn": name, ...}``), which
:func:`mgcompile.backends.inference.derive_state` applies to the unfolded weights:
``W' = W * s`` per output channel and ``b' = (b - mean) * s + beta`` with
``s = gamma / sqrt(var + eps)``. The training graph, its state dict and the audit are
never touched: this pass only runs on the inference lowering.
"""

from __future__ import annotations

from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.ir.rewrite import replace_node
from mgcompile.passes.contract import contract

@contract(requires=("no_macros",), ensures=("bn_folded",))
def fold_batchnorm(graph: Graph) -> Graph:
    g = graph.copy()
    for bn in g.nodes("batchnorm"):
        (src,) = g.inputs(bn)
        if not opdef(g.op(src)).absorbs_bn or g.users(src) != [bn]:
            continue
        a = g.attrs(src)
        step = {"bn": bn, "eps": g.attrs(bn)["eps"]}
        if opdef(g.op(src)).permutation_side == "out" and a["permutation"] is not None:
            step["channel_order"] = list(a["permutation"])  # conv channel k is BN channel perm[k]
        a["bias"] = True
        g.meta(src).setdefault("derive", []).append(step)
        replace_node(g, bn, src)
    return g
