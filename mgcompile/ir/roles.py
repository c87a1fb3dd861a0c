"""Node roles: what job a node does in its step, set by the pass that creates the node.

Later code asks ``graph.nodes(role=Role.CORRECTION_BN)`` or
``graph.nodes(role=Role.STEP_OUTPUT, step="layer2.0")``; it never parses a node name.
A node stores its roles in ``meta["roles"]`` as ``{role: [step, ...]}``: the steps it
plays the role for (a node can hand one step's output on as the next step's input).

Roles come in three kinds (:attr:`Role.kind`), which say what happens to them when a
pass rewrites the graph:

* ``boundary`` (``step_input``, ``step_output``): a property of the *tensor*. When a
  pass replaces a node by a subgraph (``ir.rewrite.replace_node``), they move to the
  node that now computes it, so every step's input and output is findable by role in
  the base graph and in every graph the passes make of it (the MG network included:
  a cycle's output is its finest level's output).
* ``member`` (``level_body``, ``coarse_level``): a property of a *region*. Nodes a pass
  inserts in place of a node (``ir.rewrite.Insertion``) inherit them, so every node a
  level's step expands to is a ``level_body`` node.
* ``job`` (the others): a property of one *node*; neither moved nor inherited.
"""

from __future__ import annotations

from enum import Enum
from typing import Any, Iterable, Mapping


class Role(str, Enum):
    STEP_INPUT = "step_input"  # the tensor a residual step reads (the previous step's output, a stem node)
    STEP_OUTPUT = "step_output"  # the tensor a residual step hands on (an MG cycle's: its finest level's output)
    RESIDUAL_SUM = "residual_sum"  # the add of a residual step's sum (expand_steps)
    LEVEL_BODY = "level_body"  # a node of an MG level's re-instantiated step (expand_multigrid_cycles)
    COARSE_LEVEL = "coarse_level"  # ... of the coarsest, fully coupled level
    RESTRICT = "restrict"  # an MG restriction R_j (a transfer)
    PROLONG = "prolong"  # an MG prolongation P_j (a transfer)
    TAU = "tau"  # the τ-correction's difference y_{j+1} - r_j
    CORRECTION_BN = "correction_bn"  # the BN after P: BN(P(y_{j+1} - r_j))
    CORRECTION = "correction"  # z_j + BN(P(...)) (multiplicative cycle)
    TRANSITION = "transition"  # the MG channel-doubling transition of a step (replace_transitions)

    @property
    def kind(self) -> str:
        if self in (Role.STEP_INPUT, Role.STEP_OUTPUT):
            return "boundary"
        if self in (Role.LEVEL_BODY, Role.COARSE_LEVEL):
            return "member"
        return "job"


ROLES_KEY = "roles"


def roles_of(meta: Mapping[str, Any]) -> dict[Role, list[str]]:
    """The roles stored in a node's ``meta``, as ``{Role: [step, ...]}``."""
    return {Role(r): list(steps) for r, steps in meta.get(ROLES_KEY, {}).items()}


def add_role(meta: dict[str, Any], role: Role, step: str) -> None:
    """Record in ``meta`` that the node plays ``role`` for ``step`` (idempotent)."""
    roles = dict(meta.get(ROLES_KEY, {}))
    steps = list(roles.get(role.value, []))
    if step not in steps:
        steps.append(step)
    roles[role.value] = steps
    meta[ROLES_KEY] = roles


def has_role(meta: Mapping[str, Any], role: Role, step: str | None = None) -> bool:
    steps = meta.get(ROLES_KEY, {}).get(Role(role).value)
    return steps is not None and (step is None or step in steps)


def keep_roles(meta: Mapping[str, Any], kinds: Iterable[str]) -> dict[str, Any]:
    """A copy of ``meta`` with only the roles of the given kinds (none left: no ``roles`` key)."""
    kinds = set(kinds)
    out = {k: v for k, v in meta.items() if k != ROLES_KEY}
    kept = {r: list(s) for r, s in meta.get(ROLES_KEY, {}).items() if Role(r).kind in kinds}
    if kept:
        out[ROLES_KEY] = kept
    return out


def move_roles(meta_from: Mapping[str, Any], meta_to: dict[str, Any], kinds: Iterable[str] = ("boundary",)) -> None:
    """Give the node of ``meta_to`` the roles of the given kinds that the node of ``meta_from`` plays."""
    kinds = set(kinds)
    for r, steps in meta_from.get(ROLES_KEY, {}).items():
        if Role(r).kind in kinds:
            for s in steps:
                add_role(meta_to, Role(r), s)


def mark_step(graph: Any, step: str, input: str, output: str) -> None:
    """Mark the tensor ``step`` reads and the one it hands on (what a builder or importer calls per step)."""
    graph.set_role(input, Role.STEP_INPUT, step)
    graph.set_role(output, Role.STEP_OUTPUT, step)


def mark_residual_steps(graph: Any) -> Any:
    """Mark the boundaries of every ``residual`` macro of a base network (one macro per step); returns ``graph``."""
    for n in graph.nodes("residual"):
        mark_step(graph, graph.meta(n).get("step", n), graph.inputs(n)[0], n)
    return graph
