"""Paper vs measured: every row of the paper's Tables 1 and 2 shipped in ``specs/paper/``."""

from __future__ import annotations

from typing import Any

from mgcompile.api import expand
from mgcompile.passes.count import count
from mgcompile.registry import list_spec_files, model_spec


def paper_rows() -> list[dict[str, Any]]:
    """One dict per paper spec: table, name, paper params (M), measured params, gap %, consistent."""
    rows = []
    for name in list_spec_files():
        if not name.startswith("paper/"):
            continue
        spec = model_spec(name)
        assert spec.paper is not None, f"{name} has no paper row"
        measured = count(expand(spec)).params
        rows.append({
            "table": spec.paper.table,
            "name": spec.name,
            "channels": "-".join(map(str, spec.stage_channels)),
            "group_size": spec.group_size,
            "coarsest": spec.theta,
            "cycle": spec.cycle,
            "paper_params_m": spec.paper.params_m,
            "params": measured,
            "gap_pct": round(100.0 * (measured / 1e6 - spec.paper.params_m) / spec.paper.params_m, 2),
            "consistent": spec.paper.consistent,
            "paper_test_acc": spec.paper.test_acc,
            "note": spec.paper.note,
        })
    order = {"Table 1 CIFAR10": 0, "Table 1 CIFAR100": 1, "Table 2 ImageNet": 2}
    return sorted(rows, key=lambda r: (order.get(r["table"], 9), r["group_size"] is not None, r["params"]))


def format_paper_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'table':<18} {'spec':<34} {'s_g':>4} {'θ':>4} {'paper M':>8} {'measured M':>11} {'gap %':>7}  status"]
    for r in rows:
        status = "ok (±3%)" if abs(r["gap_pct"]) <= 3 else "gap"
        if not r["consistent"]:
            status = "reported only: " + (r["note"] or "")
        lines.append(f"{r['table']:<18} {r['name']:<34} {r['group_size'] or '-':>4} {r['coarsest'] or '-':>4} "
                     f"{r['paper_params_m']:>8.2f} {r['params'] / 1e6:>11.3f} {r['gap_pct']:>+7.2f}  {status}")
    return "\n".join(lines)
