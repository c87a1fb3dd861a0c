"""Audit dicts -> rows -> rich tables (terminal) or CSV (scripts).

Rows use the audit's JSON key names as columns (``params``, ``macs``,
``input_size``, ``base.params``: a dot walks into the nested ``base`` object), so a
script reads the same names from ``--json`` and ``--csv``. With ``--unit flops``
the ``macs`` columns become ``flops`` (2 x MACs).
"""

from __future__ import annotations

import csv
import io
from typing import Any, Sequence

from mgcompile.errors import MGCompileError

GROUPINGS = ("stage", "level", "step")
UNITS = ("macs", "flops")
_GROUP_KEY = {"stage": "stages", "level": "levels", "step": "step_counts"}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 4) if a is not None and b else None


def audit_rows(a: dict[str, Any], *, by: str = "stage", unit: str = "macs", compare: bool = False,
               per_node: bool = False) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns and rows of one audit, grouped ``by`` stage/level/step (or one row per node), plus a total."""
    if by not in GROUPINGS:
        raise MGCompileError(f"--by {by!r}: choose one of {', '.join(GROUPINGS)}")
    if unit not in UNITS:
        raise MGCompileError(f"--unit {unit!r}: choose one of {', '.join(UNITS)}")
    k = 2 if unit == "flops" else 1
    size = "x".join(map(str, a["input_size"]))
    base = a.get("base") if compare else None
    cols = ["scope", "name", "params", unit, "activations", "input_size"]
    if base is not None:
        cols += ["base.params", f"base.{unit}", "base.activations", "ratio.params", f"ratio.{unit}"]
    acts = a["activations"]
    rows: list[dict[str, Any]] = []
    if per_node:
        if "nodes" not in a:
            raise MGCompileError("per-node rows need audit(..., per_node=True)")
        cols.insert(2, "op")
        for name, n in a["nodes"].items():
            rows.append({"scope": "node", "name": name, "op": n["op"], "params": n["params"], unit: k * n["macs"],
                         "activations": n["activations"], "input_size": size})
        base = None
        cols = [c for c in cols if not c.startswith(("base.", "ratio."))]
    else:
        group = a[_GROUP_KEY[by]]
        act_group = acts.get(f"{by}s", {})
        bgroup = base.get(_GROUP_KEY[by], {}) if base is not None else {}
        bacts = base["activations"].get(f"{by}s", {}) if base is not None else {}
        for name, c in group.items():
            rows.append(_row(by, name, c["params"], k * c["macs"], act_group.get(name), size, unit,
                             bgroup.get(name), bacts.get(name), k, base is not None))
        if base is not None:
            for name, c in bgroup.items():
                if name not in group:
                    rows.append(_row(by, name, 0, 0, None, size, unit, c, bacts.get(name), k, True))
        rest_p = a["params"] - sum(c["params"] for c in group.values())
        rest_m = a["macs"] - sum(c["macs"] for c in group.values())
        rest_a = acts["elements"] - sum(act_group.values()) if act_group else None
        if rest_p or rest_m or rest_a:
            rows.append(_row(by, f"outside {by}s", rest_p, k * rest_m, rest_a, size, unit, None, None, k,
                             base is not None))
    total_base = None
    if base is not None:
        total_base = {"params": base["params"], "macs": base["macs"]}
    rows.append(_row("total", "total", a["params"], k * a["macs"], acts["elements"], size, unit, total_base,
                     base["activations"]["elements"] if base is not None else None, k, base is not None))
    return cols, rows


def _row(scope: str, name: str, params: int, cost: int, act: int | None, size: str, unit: str,
         b: dict[str, Any] | None, bact: int | None, k: int, compare: bool) -> dict[str, Any]:
    row: dict[str, Any] = {"scope": scope, "name": name, "params": params, unit: cost, "activations": act,
                           "input_size": size}
    if compare:
        bp = b["params"] if b else None
        bc = k * b["macs"] if b else None
        row.update({"base.params": bp, f"base.{unit}": bc, "base.activations": bact,
                    "ratio.params": _ratio(params, bp), f"ratio.{unit}": _ratio(cost, bc)})
    return row


def to_csv(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> str:
    """CSV text with a header row; missing values are empty cells."""
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({c: ("" if r.get(c) is None else r.get(c)) for c in columns})
    return buf.getvalue()


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3f}"
    if isinstance(v, int):
        return f"{v:,}"
    return str(v)


def render_table(title: str, columns: Sequence[str], rows: Sequence[dict[str, Any]], caption: str = "") -> str:
    """A rich table rendered to plain text (so it can be echoed, tested and piped)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption or None, caption_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if c in ("scope", "name", "op", "input_size", "label", "channels",
                                                      "table", "status") else "right")
    for r in rows:
        table.add_row(*(_cell(r.get(c)) for c in columns), end_section=r.get("scope") == "total")
    widest = [max([len(c)] + [len(_cell(r.get(c))) for r in rows]) for c in columns]
    width = max(100, sum(widest) + 3 * len(columns) + 4, len(title) + 4)
    console = Console(width=width, record=True, file=io.StringIO(), color_system=None)
    console.print(table)
    return "\n".join(line.rstrip() for line in console.export_text().splitlines())
