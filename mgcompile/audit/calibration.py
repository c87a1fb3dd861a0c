"""The calibration report (``conversion["calibration"]``, :mod:`mgcompile.calibration`) as text."""

from __future__ import annotations

from typing import Any


def format_calibration(report: dict[str, Any]) -> str:
    """The calibration report as a table: per fitted step its error before and after, then the network's scores."""
    lines = []
    cfg = report.get("config", {})
    lines.append(f"calibration: {report.get('fitted_steps')} steps fitted on {cfg.get('presentations'):,} image "
                 f"presentations (batch {cfg.get('batch_size')}) in {report.get('seconds')} s; no labels read")
    steps = report.get("steps")
    if steps:
        w = max(len(s["step"]) for s in steps)
        lines.append(f"  {'step':<{w}}  {'status':<10}  {'error before':>12}  {'after':>8}  {'teacher-forced':>14}")
        for s in steps:
            lines.append(f"  {s['step']:<{w}}  {s['status']:<10}  {s['error_before']:>12.4f}  {s['error']:>8.4f}  "
                         f"{s['local_error']:>14.4f}")
    h = report.get("heldout")
    if h:
        lines.append(f"held out ({h['images']:,} images): top-1 agreement with the original {h['agreement_before']:.4f}"
                     f" -> {h['agreement']:.4f}, mean KL {h['kl_before']:.4f} -> {h['kl']:.4f}")
    if report.get("data"):
        lines.append(f"images: {report['data']}")
    return "\n".join(lines)
