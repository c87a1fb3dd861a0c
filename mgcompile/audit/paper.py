"""Paper vs measured: every row of the paper's Tables 1 and 2 shipped in ``specs/paper/``."""

from __future__ import annotations

from typing import Any

from mgcompile.api import expand
from mgcompile.passes.count import count
from mgcompile.registry import list_spec_files, model_spec
from mgcompile.spec import Spec


_IDENTITY_FREE = ("name", "paper", "seed")


def _architecture(spec: Spec) -> dict[str, Any]:
    """The fields that decide a network's architecture (not its name, paper row or init seed)."""
    d = spec.replace(uneven_groups=spec.uneven_policy).to_dict()
    for key in _IDENTITY_FREE:
        d.pop(key)
    d["stage_channels"], d["channels"], d["width_mult"] = list(spec.stage_channels), None, None
    return d


def paper_spec_for(spec: Spec) -> Spec | None:
    """The shipped paper spec with exactly ``spec``'s architecture, if the paper has that row."""
    if spec.paper is not None:
        return spec
    target = _architecture(spec)
    for name in list_spec_files():
        if name.startswith("paper/"):
            candidate = model_spec(name)
            if _architecture(candidate) == target:
                return candidate
    return None


def paper_comparison(spec: Spec | None, params: int) -> dict[str, Any] | None:
    """Paper count vs ``params`` for ``spec``'s architecture (``None`` when the paper has no such row)."""
    row_spec = paper_spec_for(spec) if spec is not None else None
    if row_spec is None or row_spec.paper is None:
        return None
    p = row_spec.paper
    return {"spec": row_spec.name, "table": p.table, "params_m": p.params_m, "consistent": p.consistent,
            "note": p.note, "gap_pct": round(100.0 * (params / 1e6 - p.params_m) / p.params_m, 2)}


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
