"""Paper vs measured: every row of the paper's Tables 1 and 2 shipped in ``specs/paper/``."""

from __future__ import annotations

import functools
from typing import Any

from mgcompile.api import expand
from mgcompile.passes.count import count
from mgcompile.registry import list_spec_files, model_spec
from mgcompile.models import uneven_policy
from mgcompile.spec import SPEC_FORMAT_VERSION, Spec


_IDENTITY_FREE = ("name", "paper", "seed", "version")


def _architecture(spec: Spec) -> dict[str, Any]:
    """The fields that decide a network's architecture (not its name, paper row, init seed or file format; the MG
    record with θ, t and the uneven policy resolved, without its seed and ``only_profitable``, which decides
    which steps are built, not what one is)."""
    mg = spec.multigrid
    if mg is not None:
        resolved = {"coarsest": mg.theta, "transfer_nnz": mg.nnz} if mg.group_size is not None else {}
        mg = mg.replace(uneven_groups=uneven_policy(spec), seed=None, only_profitable=False, **resolved)
    d = spec.replace(multigrid=mg, version=SPEC_FORMAT_VERSION).to_dict()
    for key in _IDENTITY_FREE:
        d.pop(key)
    d["stage_channels"], d["channels"], d["width_mult"] = list(spec.stage_channels), None, None
    return d


@functools.cache
def _paper_specs() -> tuple[Spec, ...]:
    return tuple(model_spec(name) for name in list_spec_files() if name.startswith("paper/"))


def paper_spec_for(spec: Spec) -> Spec | None:
    """The shipped paper spec with exactly ``spec``'s architecture, if the paper has that row."""
    if spec.paper is not None:
        return spec
    target = _architecture(spec)
    return next((candidate for candidate in _paper_specs() if _architecture(candidate) == target), None)


def gap_pct(params: int, paper_params_m: float) -> float:
    """Measured vs paper, in percent of the paper's count."""
    return round(100.0 * (params / 1e6 - paper_params_m) / paper_params_m, 2)


def row_status(gap: float, consistent: bool) -> str:
    """``ok (±3%)``, ``gap``, or ``reported only`` for rows whose paper number is inconsistent/unreproduced."""
    if not consistent:
        return "reported only"
    return "ok (±3%)" if abs(gap) <= 3 else "gap"


def paper_comparison(spec: Spec | None, params: int) -> dict[str, Any] | None:
    """Paper count vs ``params`` for ``spec``'s architecture (``None`` when the paper has no such row)."""
    row_spec = paper_spec_for(spec) if spec is not None else None
    if row_spec is None or row_spec.paper is None:
        return None
    p = row_spec.paper
    return {"spec": row_spec.name, "table": p.table, "params_m": p.params_m, "consistent": p.consistent,
            "note": p.note, "gap_pct": gap_pct(params, p.params_m)}


def paper_rows() -> list[dict[str, Any]]:
    """One dict per paper spec: table, name, paper params (M), measured params, gap %, consistent."""
    rows = []
    for spec in _paper_specs():
        assert spec.paper is not None, f"{spec.name} has no paper row"
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
            "gap_pct": gap_pct(measured, spec.paper.params_m),
            "status": row_status(gap_pct(measured, spec.paper.params_m), spec.paper.consistent),
            "consistent": spec.paper.consistent,
            "paper_test_acc": spec.paper.test_acc,
            "note": spec.paper.note,
        })
    order = {"Table 1 CIFAR10": 0, "Table 1 CIFAR100": 1, "Table 2 ImageNet": 2}
    return sorted(rows, key=lambda r: (order.get(r["table"], 9), r["group_size"] is not None, r["params"]))
