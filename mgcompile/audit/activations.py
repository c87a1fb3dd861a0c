"""Activation memory: elements of every intermediate tensor, from the IR's shapes.

Counted: the output of every node except the network input, the ``output`` marker
(an alias of its argument) and ``flatten`` (a view). This is what a training step
keeps alive in the worst case (no in-place ops, no recomputation) and what the
lowered module's fx nodes produce one by one; the tests compare it with
``torch.fx.passes.shape_prop`` on the lowered module.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph

NOT_STORED = ("input", "output", "flatten")
BYTES_FP32 = 4


@dataclass
class ActivationReport:
    """Elements per node (at ``batch_size``), their total, grouped sums and the largest tensor."""

    batch_size: int
    nodes: dict[str, int]
    stages: dict[str, int]
    steps: dict[str, int]
    levels: dict[str, int]
    largest: tuple[str, int]

    @property
    def elements(self) -> int:
        return sum(self.nodes.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "batch_size": self.batch_size,
            "elements": self.elements,
            "bytes_fp32": self.elements * BYTES_FP32,
            "largest": {"node": self.largest[0], "elements": self.largest[1]},
            "stages": self.stages,
            "steps": self.steps,
            "levels": self.levels,
            "counted": "outputs of every node except input, output and flatten (views), at this batch size",
        }


def activation_elements(graph: Graph, batch_size: int = 1) -> ActivationReport:
    """Count the elements of every intermediate tensor of ``graph`` at ``batch_size``."""
    if batch_size < 1:
        raise MGCompileError(f"batch size must be a positive integer, got {batch_size}")
    nodes: dict[str, int] = {}
    stages: dict[str, int] = defaultdict(int)
    steps: dict[str, int] = defaultdict(int)
    levels: dict[str, int] = defaultdict(int)
    for name in graph.nodes():
        if graph.op(name) in NOT_STORED:
            continue
        n = batch_size * math.prod(graph.shape(name))
        nodes[name] = n
        meta = graph.meta(name)
        stages[meta.get("stage", "other")] += n
        if "step" in meta:
            steps[meta["step"]] += n
        if "level" in meta:
            levels[f"level{meta['level']}"] += n
    largest = max(nodes.items(), key=lambda kv: kv[1]) if nodes else ("", 0)
    return ActivationReport(batch_size, nodes, dict(stages), dict(steps), dict(sorted(levels.items())), largest)
