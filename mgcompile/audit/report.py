"""The audit: parameter and MAC counts of a network next to its base network.

Counts come from the IR (:func:`mgcompile.passes.count`), never from building
modules; tests prove them equal to the lowered module's ``numel`` sum.
JSON keys (stable; also the CSV columns): ``params``, ``macs``, ``input_size``, ``base``.
"""

from __future__ import annotations

from typing import Any, Iterable

from mgcompile.api import expand
from mgcompile.audit.activations import activation_elements
from mgcompile.audit.paper import paper_comparison
from mgcompile.ir.graph import Graph
from mgcompile.ir.ops import opdef
from mgcompile.naming import canonical_name
from mgcompile.passes.count import check_include, count
from mgcompile.spec import Spec

MACS_COUNTED = "conv, transfer (R/P) and linear layers"


def base_graph_of(graph: Graph, spec: Spec | None) -> Graph | None:
    """The network to compare with: the spec's base, or the module a conversion started from."""
    if spec is None:
        stored = graph.meta_graph.base_graph
        return Graph.from_dict(stored) if stored else None
    return graph if not spec.is_multigrid else expand(spec.base())


def macs_counted(include: Iterable[str] = ()) -> str:
    """Which ops the ``macs`` numbers cover, in words (every output says it)."""
    extra = tuple(include)
    return MACS_COUNTED + (f", plus {', '.join(extra)} ops (1 op = 1 MAC)" if extra else "")


def audit(graph: Graph, spec: Spec | None, base: Graph | None = None, *, batch_size: int = 1,
          include: Iterable[str] = (), per_node: bool = False) -> dict[str, Any]:
    """A JSON-ready audit of an expanded graph; ``base`` defaults to the spec's base network.

    ``include`` adds elementwise op groups to the MACs (see :mod:`mgcompile.passes.count`);
    ``batch_size`` scales the activation memory; ``per_node`` adds a ``nodes`` table.
    """
    include = check_include(include)
    report = count(graph, include)
    acts = activation_elements(graph, batch_size)
    if base is None:
        base = base_graph_of(graph, spec)
    out: dict[str, Any] = {
        "name": (canonical_name(spec) if spec else None),
        "params": report.params,
        "macs": report.macs,
        "unit": f"MACs (multiply-accumulates of {macs_counted(include)}; FLOPs = 2 x MACs)",
        "counted": {"macs": macs_counted(include), "params": "trainable parameters; batch norm = 2 per channel "
                    "(running statistics are buffers)", "activations": acts.to_dict()["counted"]},
        "input_size": list(graph.input_shape()),
        "params_by_kind": dict(sorted(report.total.by_kind.items())),
        "stages": {k: v.to_dict() for k, v in report.stages.items()},
        "levels": {k: v.to_dict() for k, v in report.levels.items()},
        "step_counts": {k: v.to_dict() for k, v in report.steps.items()},
        "activations": acts.to_dict(),
        "steps": {k: v.to_dict() for k, v in graph.meta_graph.steps.items()},
        "notes": list(graph.meta_graph.notes),
    }
    if per_node:
        out["nodes"] = {n: {"op": graph.op(n), "params": p, "macs": m, "activations": acts.nodes.get(n, 0),
                            "shape": list(graph.shape(n))}
                        for n, (p, m) in report.nodes.items() if not opdef(graph.op(n)).io}
    if spec is not None:
        out["spec"] = spec.to_dict()
        paper = paper_comparison(spec, report.params)
        if paper is not None:
            out["paper"] = paper
    if base is not None:
        b = count(base, include)
        ba = activation_elements(base, batch_size)
        out["base"] = {"params": b.params, "macs": b.macs,
                       "stages": {k: v.to_dict() for k, v in b.stages.items()},
                       "step_counts": {k: v.to_dict() for k, v in b.steps.items()},
                       "activations": ba.to_dict()}
        out["ratio"] = {"params": report.params / b.params, "macs": report.macs / b.macs if b.macs else None}
    calibration = (graph.meta_graph.conversion or {}).get("calibration")
    if calibration:  # a calibrated conversion: how close it came to its original (mgcompile.calibration)
        out["calibration"] = calibration
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
    if "calibration" in a:
        from mgcompile.audit.calibration import format_calibration

        lines.append(format_calibration(a["calibration"]))
    return "\n".join(lines)
