"""Frontends: turn user input (a spec, a torch module) into the IR."""

from __future__ import annotations

from typing import Any, Callable

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.spec import Spec, skip_reason


def graph_meta(spec: Spec) -> dict[str, Any]:
    """Graph-level annotations every pass may read: the spec, the MG parameters, the user's step selection."""
    meta: dict[str, Any] = {"spec": spec.to_dict(), "notes": [], "steps": {}}
    if spec.is_multigrid:
        meta["multigrid"] = {
            "group_size": spec.group_size,
            "theta": spec.theta,
            "cycle": spec.cycle,
            "transfer": spec.transfer,
            "nnz": spec.nnz,
            "transition": spec.transition,
            "uneven_groups": spec.uneven_policy,
            "seed": spec.seed,
        }
    return meta


def _spec_frontends() -> dict[str, Callable[[Spec], Graph]]:
    """arch -> function building the base network's IR (one macro per step); imported on first use."""
    from mgcompile.frontends.mobilenet import mobilenet_v2_graph
    from mgcompile.frontends.resnet import resnet_graph

    return {"resnet": resnet_graph, "mobilenet_v2": mobilenet_v2_graph}


def graph_from_spec(spec: Spec) -> Graph:
    """The base network of ``spec`` as an IR (step macros, MG parameters in graph meta)."""
    frontends = _spec_frontends()
    if spec.arch not in frontends:
        raise SpecError(f"field 'arch' is {spec.arch!r}; no frontend for it (known: {', '.join(sorted(frontends))})")
    graph = frontends[spec.arch](spec)
    graph.meta_graph.update(graph_meta(spec))
    if spec.ignored_layers or spec.min_channels:
        graph.meta_graph["skip"] = {
            n: reason for n in graph.nodes("residual")
            if (reason := skip_reason(n, graph.attrs(n)["out_channels"], spec.ignored_layers, spec.min_channels))
        }
    return graph
