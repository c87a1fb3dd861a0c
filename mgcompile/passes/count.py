"""Counting: parameters and multiply-accumulates (MACs) per node, from the IR alone.

No module is built, so a base ResNet at 8x width (1.4B parameters) is counted in
milliseconds. MACs count conv, transfer (R/P) and linear layers, the convention of
torchvision, fvcore and ptflops; FLOPs are 2x MACs. Batch norm is counted as 2
parameters per channel (weight, bias; running statistics are buffers).

``include`` adds the cheap elementwise ops to the MACs, for users who want them
(one operation counted as one MAC): ``norm`` 2 per output element (eval-mode scale
and shift), ``activation`` 1 per element, ``pool`` one per window element read,
``add`` (inputs - 1) per element (add, sub; concat copies and counts nothing).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Iterable

from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import OPS, opdef

#: ``--count`` groups: elementwise op group -> its ops (from each op's ``count_group``)
EXTRA_OPS = {group: tuple(sorted(o.name for o in OPS.values() if o.count_group == group))
             for group in ("norm", "activation", "pool", "add")}


@dataclass
class Counts:
    params: int = 0
    macs: int = 0
    by_kind: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def add(self, params: int, macs: int, kind: str | None) -> None:
        self.params += params
        self.macs += macs
        if kind and params:
            self.by_kind[kind] += params

    def to_dict(self) -> dict:
        return {"params": self.params, "macs": self.macs, "params_by_kind": dict(sorted(self.by_kind.items()))}


@dataclass
class CountReport:
    """Totals plus breakdowns by stage, step and MG level."""

    total: Counts
    nodes: dict[str, tuple[int, int]]
    stages: dict[str, Counts]
    steps: dict[str, Counts]
    levels: dict[str, Counts]

    @property
    def params(self) -> int:
        return self.total.params

    @property
    def macs(self) -> int:
        return self.total.macs


def check_include(include: Iterable[str]) -> tuple[str, ...]:
    """Validate the names of optional op groups counted as MACs (see module docstring)."""
    include = tuple(include)
    bad = sorted(set(include) - set(EXTRA_OPS))
    if bad:
        raise MGCompileError(f"cannot count {', '.join(bad)}; choose from {', '.join(EXTRA_OPS)}")
    return include


def _extra_ops(graph: Graph, name: str, include: tuple[str, ...]) -> int:
    op = graph.op(name)
    group = next((k for k in include if op in EXTRA_OPS[k]), None)
    if group is None:
        return 0
    c, h, w = graph.shape(name)
    elements = c * h * w
    if group == "norm":
        return 2 * elements
    if group == "activation":
        return elements
    if group == "add":
        return (len(graph.inputs(name)) - 1) * elements
    if op == "global_avgpool":
        (src,) = graph.inputs(name)
        return math.prod(graph.shape(src))
    return elements * graph.attrs(name)["kernel"] ** 2


def node_cost(graph: Graph, name: str, include: tuple[str, ...] = ()) -> tuple[int, int]:
    """(params, MACs) of one node; needs shapes (run ``infer_shapes`` first)."""
    d = opdef(graph.op(name))
    a = graph.attrs(name)
    macs = d.macs(a, [graph.shape(i) for i in graph.inputs(name)], graph.shape(name))
    if include:
        macs += _extra_ops(graph, name, include)
    return d.params(a), macs


def count(graph: Graph, include: Iterable[str] = ()) -> CountReport:
    """Count every node; ``include`` names optional op groups to add to the MACs (default none)."""
    include = check_include(include)
    total = Counts()
    nodes: dict[str, tuple[int, int]] = {}
    stages: dict[str, Counts] = defaultdict(Counts)
    steps: dict[str, Counts] = defaultdict(Counts)
    levels: dict[str, Counts] = defaultdict(Counts)
    for name in graph.nodes():
        params, macs = node_cost(graph, name, include)
        nodes[name] = (params, macs)
        kind = opdef(graph.op(name)).param_kind
        total.add(params, macs, kind)
        meta = graph.meta(name)
        if not (params or macs):
            continue
        stages[meta.get("stage", "other")].add(params, macs, kind)
        if "step" in meta:
            steps[meta["step"]].add(params, macs, kind)
        if "level" in meta:
            levels[f"level{meta['level']}"].add(params, macs, kind)
    return CountReport(total, nodes, dict(stages), dict(steps), dict(sorted(levels.items())))
