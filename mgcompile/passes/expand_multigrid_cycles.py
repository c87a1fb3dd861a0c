"""Replace each constant-width residual step by its multigrid-in-channels cycle.

Rewrite rules (``graph.meta_graph.multigrid``, an :class:`~mgcompile.multigrid.MGParams`, says how):

1. A ``residual`` step with ``in == out``, stride 1, an identity shortcut and width
   C >= θ becomes a cycle over the levels of :func:`mgcompile.multigrid.mg_levels` (fine
   widths C_0 = C > C_1 > ... >= θ, coarsest C_L < θ). Level j runs *the step's own
   body* re-instantiated at width C_j (:func:`mgcompile.ir.body.scale_step`): dense
   convs take groups = C_j / s_g (one on the coarsest level), depth-wise stays
   depth-wise, cardinality is kept where larger, norms and SE scale with the level.
2. ``multiplicative`` (Algorithm 1): r_j = R_j z_j straight down; y_L = step(r_{L-1});
   going up, z_j <- z_j + BN(P_j(y_{j+1} - r_j)) (the τ-correction), then the grouped step.
3. ``additive`` (eqs. 5-8): the same restrictions; y_L = step(z_L); going up,
   y_j = z_j + F_g(z_j) + BN(P_j(y_{j+1} - r_j)) (the correction enters the step's sum,
   before its post-activation).
4. ``sparse`` transfer: one fixed random permutation Π_j of the fine channels per level
   (stored in the node attributes, never regenerated); R_j = G_R ∘ Π_j maps each block
   of 2t fine channels to t coarse ones, P_j = Π_jᵀ ∘ G_P maps them back. t is clamped
   to C_j/2 and lowered to the largest t' with 2t' | C_j (noted). ``grouped``: plain
   grouped 1x1 convs with groups = C_j / s_g.
5. A step narrower than θ is already coarse: it stays a base step (noted).
6. Every node of the cycle records its job for the step (``ir.roles``): ``restrict``/``prolong``, ``tau``,
   ``correction_bn`` (the BN after P), ``correction`` (z_j + BN(P(...))), and every node of a level's step
   ``level_body`` (the coarsest's also ``coarse_level``); the step's ``step_output`` moves to level 0's output.
7. A cycle with as many or more parameters or MACs than its step is not built when
   ``only_profitable`` (the step is kept and the report says why; so is a step whose
   levels the group size cannot split); otherwise it is built as the spec says and noted,
   and a step that cannot be cycled is an error.

:func:`plan_cycle` is the one function that decides whether a step can become a
cycle and whether it pays: specs raise its problems, conversions report them.

Per-step overrides (``graph.meta_graph.overrides``, a
:class:`~mgcompile.multigrid.StepOverrides` in file form) apply after the user's selectors
(``skip``): a step overridden ``base`` stays its base step; one overridden ``{coarsest: θ}`` is
planned with that θ instead of the network's.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from mgcompile.errors import NothingConverted, SpecError
from mgcompile.ir.body import LevelScale, group_problem, scale_step, step_cost, unscalable
from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.ir.rewrite import Insertion, replace_node
from mgcompile.ir.roles import Role
from mgcompile.multigrid import MGParams, StepOverrides, level_groups, mg_levels, resolve_uneven, uneven_level
from mgcompile.steps import STEP_KINDS
from mgcompile.passes.contract import contract


def sparse_nnz(width: int, requested: int) -> int:
    """Nonzeros per row of P on a level of ``width`` channels: clamp to width/2, need 2t | width."""
    t = max(1, min(requested, width // 2))
    while width % (2 * t):
        t -= 1
    return t


def level_permutation(seed: int, step: str, level: int, width: int) -> list[int]:
    """The fixed random channel permutation of one fine level (deterministic in seed and name)."""
    key = zlib.crc32(f"{step}/level{level}".encode())
    rng = np.random.default_rng([seed, key])
    return [int(i) for i in rng.permutation(width)]


def step_policy(mg: MGParams, kind: str) -> str:
    """The uneven-groups policy of a step of ``kind``: the record's (explicit or its family's, resolved when the
    record was made), else the step kind's (a module of no known family), else floor."""
    k = STEP_KINDS.get(kind)
    return resolve_uneven(mg.uneven_groups, None, k.uneven if k is not None else None)


@dataclass
class CyclePlan:
    """What :func:`plan_cycle` decided for one step: ``status`` cycle | kept | coarse | problem."""

    status: str
    reason: str = ""
    fine: list[int] = field(default_factory=list)
    coarsest: int = 0
    groups: list[int] = field(default_factory=list)  # conv groups per level, coarsest (1) last
    levels: list[dict[str, Any]] = field(default_factory=list)  # the step re-instantiated per level
    transfers: list[dict[str, Any]] = field(default_factory=list)  # restrict attrs per fine level
    notes: list[str] = field(default_factory=list)
    cost: tuple[int, int] = (0, 0)  # (params, MACs per pixel) of the cycle
    step_cost: tuple[int, int] = (0, 0)  # ... and of the step it replaces


def _transfers(fine: list[int], groups: list[int], mg: MGParams, step: str) -> list[dict[str, Any]]:
    out = []
    for j, w in enumerate(fine):
        if mg.transfer == "sparse":
            t = sparse_nnz(w, mg.nnz)
            out.append({"in_channels": w, "out_channels": w // 2, "groups": w // (2 * t),
                        "permutation": level_permutation(mg.seed, step, j, w), "nnz": t})
        else:
            out.append({"in_channels": w, "out_channels": w // 2, "groups": groups[j], "permutation": None})
    return out


def plan_cycle(a: Mapping[str, Any], mg: MGParams, step: str = "step") -> CyclePlan:
    """Can the step with attributes ``a`` become an MG cycle, and does it pay? (rules 1, 5 and 6).

    The uneven-groups policy is :func:`step_policy`'s; the θ is ``mg``'s (a step overridden with its own
    coarsest width is planned with ``mg.replace(coarsest=θ)``)."""
    width = a["out_channels"]
    if a["in_channels"] != width or a["stride"] != 1 or a["shortcut"]:
        return CyclePlan("kept", "channel-changing step")
    why = unscalable(a)
    if why is not None:
        return CyclePlan("kept", f"its body cannot be cycled: {why}")
    try:
        levels = mg_levels(width, mg.theta)
    except SpecError as exc:
        return CyclePlan("problem", str(exc).split(";")[0])
    if levels is None:
        return CyclePlan("coarse", f"width {width} < θ={mg.theta}: already coarse, kept as a base step")
    fine, coarsest = levels
    policy = step_policy(mg, a["kind"])
    bad = uneven_level(fine, mg.group_size)
    if bad is not None and policy != "floor":
        return CyclePlan("problem", f"group_size {mg.group_size} does not divide level width {bad} (fine levels {fine})")
    groups = [level_groups(w, mg.group_size, policy) for w in fine] + [1]
    plan = CyclePlan("cycle", fine=fine, coarsest=coarsest, groups=groups)
    for j, (w, g) in enumerate(zip(fine + [coarsest], groups)):
        scaled = scale_step(a, LevelScale(width, w, g))
        problem = group_problem(scaled)
        while problem is not None and policy == "floor" and g > 1:  # fewer, wider groups that fit the inner widths too
            g -= 1
            if (w // 2) % g == 0:
                scaled = scale_step(a, LevelScale(width, w, g))
                problem = group_problem(scaled)
        groups[j] = g
        if problem is not None:
            return CyclePlan("problem", f"{problem} on level{j} (width {w}, group_size {mg.group_size})")
        plan.levels.append(scaled)
        if j < len(fine) and w > mg.group_size and w % mg.group_size:
            plan.notes.append(f"s_g {mg.group_size} does not divide level width {w}: {g} groups of {w // g} "
                              "(uneven_groups=floor)")
        elif j < len(fine) and g != max(1, w // mg.group_size):
            plan.notes.append(f"level width {w}: {g} groups of {w // g}, so that they divide the step's inner widths "
                              "(uneven_groups=floor)")
    plan.transfers = _transfers(fine, groups, mg, step)
    plan.step_cost = step_cost(a, (width, 1, 1))
    params = macs = 0
    for scaled, w in zip(plan.levels, fine + [coarsest]):
        p, m = step_cost(scaled, (w, 1, 1))
        params, macs = params + p, macs + m
    for t in plan.transfers:
        attrs = {k: v for k, v in t.items() if k != "nnz"}
        p = opdef("restrict").params(attrs)
        params, macs = params + 2 * p + 2 * t["in_channels"], macs + 2 * p  # R, P and the BN after P
    plan.cost = (params, macs)
    if params >= plan.step_cost[0] or macs >= plan.step_cost[1]:
        why = (f"the cycle would cost {params:,} params / {macs:,} MACs per pixel against the step's "
               f"{plan.step_cost[0]:,} / {plan.step_cost[1]:,}")
        if mg.only_profitable:
            return CyclePlan("kept", f"would not pay: {why}", step_cost=plan.step_cost, cost=plan.cost)
        plan.notes.append(f"costs more than the step it replaces: {why}")
    return plan


@contract(requires=("not_cycled",), ensures=("steps_planned",))
def expand_multigrid_cycles(graph: Graph) -> Graph:
    mg = graph.meta_graph.multigrid
    if mg is None:
        return graph
    g = graph.copy()
    meta = g.meta_graph
    overrides = StepOverrides.of(meta.overrides)
    for name in g.nodes("residual"):
        a = g.attrs(name)
        info = meta.step(name, a["out_channels"])
        override = overrides.get(name)
        if name in meta.skip or (override is not None and override.base):  # a selector wins over an override
            info.status, info.reason = "skipped", meta.skip.get(name, "overridden: base")
            continue
        plan = plan_cycle(a, mg if override is None else mg.replace(coarsest=override.coarsest), name)
        if plan.status == "problem" and not mg.only_profitable:  # a spec is built as written, or refused
            raise SpecError(f"{name}: {plan.reason}; choose a group size that divides every fine width")
        if plan.status == "problem":  # only_profitable: a step that cannot become a cycle stays, as on the module route
            plan = CyclePlan("kept", f"cannot become a cycle: {plan.reason}")
        if plan.status != "cycle":
            info.status, info.reason = plan.status, plan.reason
            if plan.reason != "channel-changing step":  # (replace_transitions notes those)
                meta.notes.append(f"{name}: {plan.reason}")
            continue
        meta.notes.extend(f"{name}: {note}" for note in plan.notes)
        out = _emit_cycle(g, name, plan, mg)
        info.status, info.fine, info.coarsest, info.cycle, info.transfer = (
            "cycle", plan.fine, plan.coarsest, mg.cycle, mg.transfer)
        if mg.transfer == "sparse":
            info.nnz = [t["nnz"] for t in plan.transfers]
            if any(t != mg.nnz for t in info.nnz):
                meta.notes.append(
                    f"{name}: sparse transfer nnz per level {info.nnz} (requested t={mg.nnz}; clamped to C_j/2 "
                    "and to 2t | C_j)")
        replace_node(g, name, out)
    return g


def _emit_cycle(g: Graph, name: str, plan: CyclePlan, mg: MGParams) -> str:
    ins = Insertion(g, name)
    (x,) = g.inputs(name)
    fine = plan.fine

    def step(level: int, inputs: list[str]) -> str:
        w = (fine + [plan.coarsest])[level]
        roles = [Role.LEVEL_BODY] + ([Role.COARSE_LEVEL] if level == len(fine) else [])
        return ins.add(f"{name}.level{level}", "residual", inputs, meta={"level": level, "level_width": w},
                       roles=roles, **plan.levels[level])

    # Going down: r_j = R_j z_j, no smoothing on the way down.
    z = [x]
    for j, t in enumerate(plan.transfers):
        attrs = {k: v for k, v in t.items() if k != "nnz"}
        z.append(ins.add(f"{name}.level{j}.restrict", "restrict", [z[j]],
                         meta={"level": j, "level_width": fine[j]}, roles=[Role.RESTRICT], **attrs))
    # Coarsest: the fully coupled step.
    y = step(len(fine), [z[-1]])
    # Going up: τ-correction, then (multiplicative) the grouped step on the corrected z_j.
    for j in reversed(range(len(fine))):
        w = fine[j]
        lm = {"level": j, "level_width": w}
        r = g.attrs(z[j + 1])
        diff = ins.add(f"{name}.level{j}.tau", "sub", [y, z[j + 1]], meta=lm, roles=[Role.TAU])
        p = ins.add(f"{name}.level{j}.prolong", "prolong", [diff], meta=lm, roles=[Role.PROLONG], in_channels=w // 2,
                    out_channels=w, groups=r["groups"], permutation=r["permutation"])
        corr = ins.add(f"{name}.level{j}.prolong_bn", "batchnorm", [p], meta=lm, roles=[Role.CORRECTION_BN], channels=w)
        if mg.cycle == "multiplicative":
            zc = ins.add(f"{name}.level{j}.correct", "add", [z[j], corr], meta=lm, roles=[Role.CORRECTION])
            y = step(j, [zc])
        else:
            y = step(j, [z[j], corr])
    return y


def reasons_summary(rows: list[tuple[str, str]], limit: int = 3) -> str:
    """``(step, reason)`` pairs grouped by reason: ``16 steps: width 64 < θ=128 (stage1.block0, ...)``."""
    groups: dict[str, list[str]] = {}
    for step, reason in rows:
        groups.setdefault(reason, []).append(step)
    parts = []
    for reason, steps in groups.items():
        names = ", ".join(steps[:limit]) + (", ..." if len(steps) > limit else "")
        parts.append(f"{len(steps)} step{'s' if len(steps) != 1 else ''}: {reason} ({names})")
    return "; ".join(parts) or "the network has no residual step"


def require_cycles(graph: Graph, what: str) -> Graph:
    """Raise :class:`NothingConverted` when an MG graph has no cycle: an MG name must never hold the base network."""
    mg = graph.meta_graph.multigrid
    if mg is None:
        return graph
    steps = graph.meta_graph.steps
    if any(info.status == "cycle" for info in steps.values()):
        return graph
    rows = [(name, info.reason or info.status or "?") for name, info in steps.items()]
    raise NothingConverted(
        f"no residual step of {what} became an MG cycle at group size {mg.group_size}, θ={mg.theta} "
        f"({reasons_summary(rows)}); lower --coarsest/--group-size or drop the exclusions",
        {"steps": {k: v.to_dict() for k, v in steps.items()}, "multigrid": mg.to_meta()})
