"""The audit: parameter and MAC counts of a network next to its base network.

Counts come from the IR (:func:`mgcompile.passes.count`), never from building
modules; tests prove them equal to the lowered module's ``numel`` sum.
JSON keys (stable; also the CSV columns): ``params``, ``macs``, ``input_size``, ``base``.
"""

from __future__ import annotations

from typing import Any

from mgcompile.api import expand
from mgcompile.ir.graph import Graph
from mgcompile.passes.count import count
from mgcompile.spec import Spec


def _input_size(graph: Graph) -> list[int]:
    (inp,) = graph.nodes("input")
    return list(graph.shape(inp))


def base_graph_of(graph: Graph, spec: Spec | None) -> Graph | None:
    """The base network with the same channels (``None`` when the graph has no spec)."""
    if spec is None:
        return None
    return graph if not spec.is_multigrid else expand(spec.base())


def audit(graph: Graph, spec: Spec | None, base: Graph | None = None) -> dict[str, Any]:
    """A JSON-ready audit of an expanded graph; ``base`` defaults to the spec's base network."""
    report = count(graph)
    if base is None:
        base = base_graph_of(graph, spec)
    out: dict[str, Any] = {
        "name": (spec.name if spec else None),
        "params": report.params,
        "macs": report.macs,
        "unit": "MACs (multiply-accumulates of conv, transfer and linear layers; FLOPs = 2 x MACs)",
        "input_size": _input_size(graph),
        "params_by_kind": dict(sorted(report.total.by_kind.items())),
        "stages": {k: v.to_dict() for k, v in report.stages.items()},
        "levels": {k: v.to_dict() for k, v in report.levels.items()},
        "steps": graph.meta_graph.get("steps", {}),
        "notes": list(graph.meta_graph.get("notes", [])),
    }
    if spec is not None:
        out["spec"] = spec.to_dict()
        if spec.paper is not None:
            out["paper"] = {"params_m": spec.paper.params_m, "table": spec.paper.table,
                            "gap_pct": round(100.0 * (report.params / 1e6 - spec.paper.params_m) / spec.paper.params_m, 2)}
    if base is not None:
        b = count(base)
        out["base"] = {"params": b.params, "macs": b.macs,
                       "stages": {k: v.to_dict() for k, v in b.stages.items()}}
        out["ratio"] = {"params": report.params / b.params, "macs": report.macs / b.macs if b.macs else None}
    return out


def format_audit(a: dict[str, Any]) -> str:
    """A short human table: totals, per-stage counts next to the base network, notes."""
    lines = []
    title = a.get("name") or "model"
    lines.append(f"{title}  input {'x'.join(map(str, a['input_size']))}  ({a['unit'].split(' (')[0]})")
    head = f"{'stage':<10} {'params':>14} {'MACs':>16}"
    if "base" in a:
        head += f" {'base params':>14} {'base MACs':>16} {'params ratio':>12}"
    lines.append(head)
    base_stages = a.get("base", {}).get("stages", {})
    for stage, c in a["stages"].items():
        row = f"{stage:<10} {c['params']:>14,} {c['macs']:>16,}"
        if "base" in a:
            bc = base_stages.get(stage, {"params": 0, "macs": 0})
            ratio = f"{c['params'] / bc['params']:.3f}" if bc["params"] else "-"
            row += f" {bc['params']:>14,} {bc['macs']:>16,} {ratio:>12}"
        lines.append(row)
    total = f"{'total':<10} {a['params']:>14,} {a['macs']:>16,}"
    if "base" in a:
        total += f" {a['base']['params']:>14,} {a['base']['macs']:>16,} {a['ratio']['params']:>12.3f}"
    lines.append(total)
    if "paper" in a:
        lines.append(f"paper: {a['paper']['params_m']}M params ({a['paper']['table']}); measured "
                     f"{a['params'] / 1e6:.3f}M, gap {a['paper']['gap_pct']:+.2f}%")
    for note in a["notes"]:
        lines.append(f"note: {note}")
    return "\n".join(lines)
