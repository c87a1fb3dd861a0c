"""Reading graphs saved by earlier mgcompile versions (IR version 1: v0.1.0 up to issue 18).

Version 1 graphs carry no node roles: a level's step nodes had ``meta["role"]`` =
``"fine"``/``"coarse"`` and every other job was only visible in a node's name. This is
the one place that reads those names, once, when an old ``graph.json`` is loaded; the
rest of mgcompile only asks for roles.
"""

from __future__ import annotations

import re
from typing import Any

from mgcompile.ir.roles import Role, add_role

_CYCLE_NODE = re.compile(r"\.level\d+\.(restrict|prolong|prolong_bn|tau|correct)$")
_JOBS = {("restrict", "restrict"): Role.RESTRICT, ("prolong", "prolong"): Role.PROLONG,
         ("prolong_bn", "batchnorm"): Role.CORRECTION_BN, ("tau", "sub"): Role.TAU, ("correct", "add"): Role.CORRECTION}


def upgrade_v1_roles(graph: Any) -> None:
    """Give the nodes of a version-1 graph the roles the passes of today would have given them."""
    for n in graph.nodes():
        meta, op = graph.meta(n), graph.op(n)
        step = meta.get("step", n)
        level_role = meta.pop("role", None)
        if level_role in ("fine", "coarse"):
            add_role(meta, Role.LEVEL_BODY, step)
            if level_role == "coarse":
                add_role(meta, Role.COARSE_LEVEL, step)
        m = _CYCLE_NODE.search(n)
        if m and (m.group(1), op) in _JOBS:
            add_role(meta, _JOBS[m.group(1), op], step)
        if op == "add" and n.endswith(".add") and "step" in meta and len(graph.inputs(n)) >= 2:
            add_role(meta, Role.RESIDUAL_SUM, step)  # the sums expand_steps wrote
        if op == "transition":
            add_role(meta, Role.TRANSITION, step.removesuffix(".transition"))
    _upgrade_step_boundaries(graph)


def _upgrade_step_boundaries(graph: Any) -> None:
    """A step's input and output from its nodes' ``step`` tags (a transition ``S.transition`` belongs to S)."""
    tags = {graph.meta(n)["step"] for n in graph.nodes() if "step" in graph.meta(n)}
    for step in sorted(t for t in tags if not t.endswith(".transition")):
        members = {n for n in graph.nodes() if (t := graph.meta(n).get("step")) == step or t == step + ".transition"}
        feeds = {i for n in members for i in graph.inputs(n) if i not in members}
        outs = [n for n in members if any(u not in members for u in graph.users(n))]
        if len(feeds) == 1 and len(outs) == 1:
            graph.set_role(feeds.pop(), Role.STEP_INPUT, step)
            graph.set_role(outs[0], Role.STEP_OUTPUT, step)
