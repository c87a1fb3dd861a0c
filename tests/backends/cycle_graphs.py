"""Single-step graphs for testing one MG cycle in isolation."""

from __future__ import annotations

import mgcompile
from mgcompile.ir import Graph
from mgcompile.ir.body import LevelScale, scale_step
from mgcompile.passes import run_passes
from mgcompile.steps import make_step


def one_step_model(width: int, *, group_size: int | None, theta: int, cycle: str = "multiplicative",
                   transfer: str = "sparse", activation: str = "pre", hw: int = 6, seed: int = 0):
    """input -> one residual step of ``width`` channels (a cycle when group_size is set) -> output."""
    meta: dict = {"notes": [], "steps": [], "spec": {}}
    meta["steps"] = {}
    if group_size is not None:
        meta["multigrid"] = {"group_size": group_size, "theta": theta, "cycle": cycle, "transfer": transfer,
                             "nnz": group_size, "transition": "paper", "seed": seed}
    g = Graph(meta)
    x = g.add("input", "input", channels=width, height=hw, width=hw)
    s = g.add("step", "residual", [x], **make_step("basic", in_channels=width, out_channels=width,
                                                    activation=activation))
    g.add("output", "output", [s])
    graph = run_passes(g)
    return mgcompile.build(graph), graph


def grouped_step_model(width: int, groups: int, hw: int = 6):
    """One pre-activation basic step with its convs grouped, as a fine level instantiates it."""
    g = Graph({"notes": [], "steps": {}})
    x = g.add("input", "input", channels=width, height=hw, width=hw)
    step = scale_step(make_step("basic", in_channels=width, out_channels=width, activation="pre"),
                      LevelScale(width, width, groups))
    s = g.add("step", "residual", [x], **step)
    g.add("output", "output", [s])
    return mgcompile.build(run_passes(g))
