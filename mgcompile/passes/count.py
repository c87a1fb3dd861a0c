"""Counting: parameters and multiply-accumulates (MACs) per node, from the IR alone.

No module is built, so a base ResNet at 8x width (1.4B parameters) is counted in
milliseconds. MACs count conv, transfer (R/P) and linear layers, the convention of
torchvision, fvcore and ptflops; FLOPs are 2x MACs. Batch norm is counted as 2
parameters per channel (weight, bias; running statistics are buffers).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef

PARAM_KINDS = {"conv": "conv", "restrict": "transfer", "prolong": "transfer", "batchnorm": "norm",
               "linear": "linear", "opaque": "opaque"}


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


def node_cost(graph: Graph, name: str) -> tuple[int, int]:
    """(params, MACs) of one node; needs shapes (run ``infer_shapes`` first)."""
    d = opdef(graph.op(name))
    a = graph.attrs(name)
    macs = d.macs(a, [graph.shape(i) for i in graph.inputs(name)], graph.shape(name))
    return d.params(a), macs


def count(graph: Graph) -> CountReport:
    total = Counts()
    nodes: dict[str, tuple[int, int]] = {}
    stages: dict[str, Counts] = defaultdict(Counts)
    steps: dict[str, Counts] = defaultdict(Counts)
    levels: dict[str, Counts] = defaultdict(Counts)
    for name in graph.nodes():
        params, macs = node_cost(graph, name)
        nodes[name] = (params, macs)
        kind = PARAM_KINDS.get(graph.op(name))
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
