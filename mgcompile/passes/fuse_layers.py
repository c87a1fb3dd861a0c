"""Fuse imported primitive ops into the IR's compound ops, so a step body can be scaled per MG level.

Rules (:data:`FUSIONS`, each a pattern matched at one node and the op it becomes):

1. ``squeeze_excite``: ``mul(x, gate(conv1x1(act(conv1x1(global_avgpool(x))))))``, both
   convs dense with bias, gate sigmoid or hardsigmoid, every inner node used once: the
   squeeze-excitation of torchvision (``SqueezeExcitation``) and timm (``SEModule``,
   EfficientNet's ``SqueezeExcite``), found by dataflow. Its reduce/expand convs become
   the op's ``fc1``/``fc2`` (weights recorded, so a kept layer keeps them). On an MG level
   the fused op stays dense over the level's channels, which the raw convs would not.

A node the pattern does not match stays as it was (``mul`` is an op of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from mgcompile.ir.graph import Graph

_SE_ACTIVATIONS = ("relu", "relu6", "silu", "hardswish", "sigmoid", "hardsigmoid")
_SE_GATES = ("sigmoid", "hardsigmoid")


@dataclass
class Fusion:
    """Replace ``members`` (ending at the matched node) by one ``op`` node reading ``inputs``."""

    name: str
    op: str
    inputs: list[str]
    attrs: dict
    members: list[str]
    meta: dict


def _single(g: Graph, n: str, op: str | tuple[str, ...], user: str) -> bool:
    ops = (op,) if isinstance(op, str) else op
    return n in g and g.op(n) in ops and g.users(n) == [user]


def _dense_1x1(g: Graph, n: str) -> bool:
    a = g.attrs(n)
    return a["kernel"] == 1 and a["stride"] == 1 and a["padding"] == 0 and a["groups"] == 1 and a["bias"]


def _squeeze_excite(g: Graph, mul: str) -> Fusion | None:
    if g.op(mul) != "mul":
        return None
    a, b = g.inputs(mul)
    return _se_from(g, mul, a, b) or _se_from(g, mul, b, a)  # on a 1x1 map both factors have one shape


def _se_from(g: Graph, mul: str, x: str, gate: str) -> Fusion | None:
    if not _single(g, gate, _SE_GATES, mul):
        return None
    (fc2,) = g.inputs(gate)
    if not _single(g, fc2, "conv", gate) or not _dense_1x1(g, fc2):
        return None
    (act,) = g.inputs(fc2)
    if not _single(g, act, _SE_ACTIVATIONS, fc2):
        return None
    (fc1,) = g.inputs(act)
    if not _single(g, fc1, "conv", act) or not _dense_1x1(g, fc1):
        return None
    (pool,) = g.inputs(fc1)
    if not _single(g, pool, "global_avgpool", fc1) or g.inputs(pool) != [x]:
        return None
    a1, a2 = g.attrs(fc1), g.attrs(fc2)
    if a2["in_channels"] != a1["out_channels"] or a2["out_channels"] != a1["in_channels"]:
        return None
    sources = [g.meta(n).get("source", n) for n in (fc1, fc2)]
    name = _common_parent(sources) or f"{mul}_se"
    weights = {f"{part}.{key}": src for part, n in (("fc1", fc1), ("fc2", fc2))
               for key, src in g.meta(n).get("weights", {}).items()}
    meta = {**g.meta(mul), "source": name, "weights": weights}
    return Fusion(name, "squeeze_excite", [x], dict(channels=a1["in_channels"], squeeze=a1["out_channels"],
                                                     activation=g.op(act), gate=g.op(gate)),
                  [pool, fc1, act, fc2, gate, mul], meta)


def _common_parent(paths: list[str]) -> str:
    parts = [p.split(".")[:-1] for p in paths]
    common: list[str] = []
    for level in zip(*parts):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return ".".join(common)


#: (rule name, match(graph, node) -> Fusion | None)
FUSIONS: list[tuple[str, Callable[[Graph, str], Fusion | None]]] = [
    ("squeeze_excite", _squeeze_excite),
]


def fuse_layers(graph: Graph) -> Graph:
    """Apply every fusion rule wherever it matches (on a copy)."""
    g = graph.copy()
    for _, match in FUSIONS:
        for n in g.nodes():
            if n not in g:
                continue
            f = match(g, n)
            if f is None:
                continue
            last = f.members[-1]
            name = f.name
            k = 0
            while name in g and name not in f.members:
                k += 1
                name = f"{f.name}_{k}"
            tmp = g.add(f"{name}.__fused__", f.op, f.inputs, meta=f.meta, order=g.order(last), **f.attrs)
            g.replace_uses(last, tmp)
            for m in sorted(f.members, key=g.order, reverse=True):
                g.remove(m)
            fused = g.add(name, f.op, f.inputs, meta=f.meta, order=g.order(tmp), **f.attrs)
            g.replace_uses(tmp, fused)
            g.remove(tmp)
    return g
