"""Replace each constant-width residual step by its multigrid-in-channels cycle.

Rewrite rules (the graph's ``multigrid`` meta gives s_g, θ, cycle, transfer, t):

1. A ``residual`` step with ``in == out``, stride 1 and width C >= θ becomes a cycle
   over the levels of :func:`mgcompile.spec.mg_levels` (fine widths C_0 = C > C_1 > ...
   >= θ, coarsest C_L < θ). Level j's step is the same residual step at width C_j,
   grouped with groups = C_j / s_g (one group when C_j <= s_g); the coarsest step is
   fully coupled.
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
"""

from __future__ import annotations

import zlib

import numpy as np

from mgcompile.errors import NothingConverted, SpecError
from mgcompile.ir.graph import Graph
from mgcompile.ir.rewrite import Insertion, replace_node
from mgcompile.passes.expand_steps import bottleneck_inner_groups
from mgcompile.spec import default_uneven_policy, level_groups, mg_levels


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


def uneven_policy(mg: dict, kind: str) -> str:
    """The graph's policy for levels s_g does not divide (conversions leave it unset: the step kind's default)."""
    return mg.get("uneven_groups") or default_uneven_policy(kind)


def cycle_groups(fine: list[int], group_size: int, uneven: str) -> list[int]:
    """Conv groups of each level's step: grouped on fine levels, one group on the coarsest."""
    return [level_groups(w, group_size, uneven) for w in fine] + [1]


def cycle_problem(a: dict, mg: dict) -> str | None:
    """Why the constant-width step with attributes ``a`` cannot become an MG cycle (``None``: it can).

    The one place that decides divisibility: the pass raises it as an error for specs,
    the converter reports it as the reason a block was skipped.
    """
    width = a["out_channels"]
    try:
        levels = mg_levels(width, mg["theta"])
    except SpecError as exc:
        return str(exc).split(";")[0]
    if levels is None:
        return f"width {width} < θ={mg['theta']}: already coarse"
    fine, coarsest = levels
    ratio = a["mid_channels"] / width
    try:
        groups = cycle_groups(fine, mg["group_size"], uneven_policy(mg, a["kind"]))
    except SpecError:
        bad = next(w for w in fine if w > mg["group_size"] and w % mg["group_size"])
        return f"group_size {mg['group_size']} does not divide level width {bad} (fine levels {fine})"
    for level, (w, g) in enumerate(zip(fine + [coarsest], groups)):
        mid = w * ratio
        inner = bottleneck_inner_groups(g, a.get("mid_groups", 1), int(mid)) if a["kind"] == "bottleneck" else g
        if mid != int(mid) or int(mid) % inner:
            return (f"the {inner} groups of level{level} do not divide its inner width {mid:g} "
                    f"(width {w}, group_size {mg['group_size']})")
    return None


def expand_multigrid_cycles(graph: Graph) -> Graph:
    mg = graph.meta_graph.get("multigrid")
    if not mg:
        return graph
    g = graph.copy()
    skip: dict = g.meta_graph.get("skip", {})
    for name in g.nodes("residual"):
        a = g.attrs(name)
        width = a["out_channels"]
        info = g.meta_graph["steps"].setdefault(name, {"width": width})
        if name in skip:
            info["status"] = "skipped"
            info["reason"] = skip[name]
            continue
        if a["in_channels"] != width or a["stride"] != 1:
            info["status"] = "kept"
            info["reason"] = "channel-changing step"
            continue
        if a["groups"] != 1:
            info["status"] = "kept"
            info["reason"] = "already grouped"
            continue
        levels = mg_levels(width, mg["theta"])
        if levels is None:
            info["status"] = "coarse"
            info["reason"] = f"width {width} < θ={mg['theta']}: already coarse, kept as a base step"
            g.meta_graph["notes"].append(f"{name}: {info['reason']}")
            continue
        fine, coarsest = levels
        problem = cycle_problem(a, mg)
        if problem is not None:
            raise SpecError(f"{name}: {problem}; choose a group size that divides every fine width")
        groups = cycle_groups(fine, mg["group_size"], uneven_policy(mg, a["kind"]))
        for w, gr in zip(fine, groups):
            if w > mg["group_size"] and w % mg["group_size"]:
                g.meta_graph["notes"].append(
                    f"{name}: s_g {mg['group_size']} does not divide level width {w}: {gr} groups of "
                    f"{w // gr} (uneven_groups=floor)")
        out, nnz = _emit_cycle(g, name, a, fine, coarsest, groups, mg)
        info.update(status="cycle", fine=fine, coarsest=coarsest, cycle=mg["cycle"], transfer=mg["transfer"])
        if mg["transfer"] == "sparse":
            info["nnz"] = nnz
            if any(t != mg["nnz"] for t in nnz):
                g.meta_graph["notes"].append(
                    f"{name}: sparse transfer nnz per level {nnz} (requested t={mg['nnz']}; clamped to C_j/2 and to 2t | C_j)"
                )
        replace_node(g, name, out)
    return g


def _emit_cycle(g: Graph, name: str, a: dict, fine: list[int], coarsest: int, level_conv_groups: list[int],
                mg: dict) -> tuple[str, list[int]]:
    ins = Insertion(g, name)
    (x,) = g.inputs(name)
    widths = fine + [coarsest]
    ratio = a["mid_channels"] / a["out_channels"]
    nnz: list[int] = []

    def step(level: int, inputs: list[str]) -> str:
        w = widths[level]
        groups = level_conv_groups[level]
        return ins.add(f"{name}.level{level}", "residual", inputs,
                       meta={"level": level, "level_width": w, "role": "coarse" if level == len(fine) else "fine"},
                       **{**a, "in_channels": w, "out_channels": w, "mid_channels": int(w * ratio), "groups": groups})

    # Going down: r_j = R_j z_j, no smoothing on the way down.
    z = [x]
    for j, w in enumerate(fine):
        if mg["transfer"] == "sparse":
            t = sparse_nnz(w, mg["nnz"])
            nnz.append(t)
            groups, perm = w // (2 * t), level_permutation(mg["seed"], name, j, w)
        else:
            groups, perm = level_conv_groups[j], None
        z.append(ins.add(f"{name}.level{j}.restrict", "restrict", [z[j]], meta={"level": j, "level_width": w},
                         in_channels=w, out_channels=w // 2, groups=groups, permutation=perm))
    # Coarsest: the fully coupled step.
    y = step(len(fine), [z[-1]])
    # Going up: τ-correction, then (multiplicative) the grouped step on the corrected z_j.
    for j in reversed(range(len(fine))):
        w = fine[j]
        lm = {"level": j, "level_width": w}
        r = g.attrs(z[j + 1])
        diff = ins.add(f"{name}.level{j}.tau", "sub", [y, z[j + 1]], meta=lm)
        p = ins.add(f"{name}.level{j}.prolong", "prolong", [diff], meta=lm, in_channels=w // 2, out_channels=w,
                    groups=r["groups"], permutation=r["permutation"])
        corr = ins.add(f"{name}.level{j}.prolong_bn", "batchnorm", [p], meta=lm, channels=w)
        if mg["cycle"] == "multiplicative":
            zc = ins.add(f"{name}.level{j}.correct", "add", [z[j], corr], meta=lm)
            y = step(j, [zc])
        else:
            y = step(j, [z[j], corr])
    return y, nnz


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
    if not graph.meta_graph.get("multigrid"):
        return graph
    steps = graph.meta_graph.get("steps", {})
    if any(info.get("status") == "cycle" for info in steps.values()):
        return graph
    rows = [(name, info.get("reason", info.get("status", "?"))) for name, info in steps.items()]
    mg = graph.meta_graph["multigrid"]
    raise NothingConverted(
        f"no residual step of {what} became an MG cycle at group size {mg['group_size']}, θ={mg['theta']} "
        f"({reasons_summary(rows)}); lower --coarsest/--group-size or drop the exclusions",
        {"steps": steps, "multigrid": mg})
