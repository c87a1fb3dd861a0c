"""Frontends: turn user input (a spec, a torch module) into the IR."""

from __future__ import annotations

from typing import Callable

from mgcompile.errors import SpecError
from mgcompile.ir.graph import Graph
from mgcompile.spec import Spec, skip_reason

# arch name -> function building the base network's IR (with step macros) from a spec
SPEC_FRONTENDS: dict[str, Callable[[Spec], Graph]] = {}


def register_spec_frontend(arch: str) -> Callable[[Callable[[Spec], Graph]], Callable[[Spec], Graph]]:
    def deco(fn: Callable[[Spec], Graph]) -> Callable[[Spec], Graph]:
        SPEC_FRONTENDS[arch] = fn
        return fn

    return deco


def graph_from_spec(spec: Spec) -> Graph:
    """The base network of ``spec`` as an IR (step macros, MG parameters in graph meta)."""
    _load_builtin_frontends()
    try:
        fn = SPEC_FRONTENDS[spec.arch]
    except KeyError:
        raise SpecError(f"field 'arch' is {spec.arch!r}; no frontend for it (known: {', '.join(sorted(SPEC_FRONTENDS))})") from None
    graph = fn(spec)
    if spec.ignored_layers or spec.min_channels:
        graph.meta_graph["skip"] = {
            n: reason for n in graph.nodes("residual")
            if (reason := skip_reason(n, graph.attrs(n)["out_channels"], spec.ignored_layers, spec.min_channels))
        }
    return graph


def _load_builtin_frontends() -> None:
    if "resnet" not in SPEC_FRONTENDS:
        from mgcompile.frontends.resnet import resnet_graph

        SPEC_FRONTENDS["resnet"] = resnet_graph
    if "mobilenet_v2" not in SPEC_FRONTENDS:
        from mgcompile.frontends.mobilenet import mobilenet_v2_graph

        SPEC_FRONTENDS["mobilenet_v2"] = mobilenet_v2_graph
