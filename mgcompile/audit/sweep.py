"""Width scaling: params and MACs of a network and its base at several widths.

Counted from the IR only (:func:`mgcompile.api.expand` + :func:`mgcompile.passes.count`),
never by building modules, so 8x-wide base networks cost milliseconds. The growth
exponent is the least-squares slope of log(count) over log(width): about 2 for a
base CNN (dense convs grow with c²) and about 1 for its MG version with θ and s_g
fixed (the paper's eq. 15: grouped fine levels and sparse transfers grow with c).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from mgcompile.api import expand
from mgcompile.errors import MGCompileError
from mgcompile.passes.count import count
from mgcompile.spec import Spec

def parse_widths(text: str, spec: Spec) -> list[tuple[str, tuple[int, ...]]]:
    """Parse ``--sweep-width``: multipliers (``1,2,4,8``) or channel lists (``32-64-128-256,64-128-256-512``).

    Returns (label, stage channels) per point, sorted by width. Needs at least two
    distinct widths for the fit.
    """
    items = [t.strip() for t in text.split(",") if t.strip()]
    points: list[tuple[str, tuple[int, ...]]] = []
    for item in items:
        if "-" in item:
            try:
                channels = tuple(int(c) for c in item.split("-"))
            except ValueError:
                raise MGCompileError(f"--sweep-width item {item!r} is not a channel list like 64-128-256-512") from None
            if len(channels) != len(spec.channels) or min(channels) < 1:
                raise MGCompileError(
                    f"--sweep-width channel list {item!r} needs {len(spec.channels)} positive widths, one per stage "
                    f"(this network: {'-'.join(map(str, spec.stage_channels))})"
                )
            points.append((item, channels))
            continue
        try:
            mult = float(item)
        except ValueError:
            raise MGCompileError(
                f"--sweep-width item {item!r} is neither a width multiplier (1,2,4,8) nor a channel list (64-128-256-512)"
            ) from None
        if not mult > 0 or math.isinf(mult):
            raise MGCompileError(f"--sweep-width multiplier {item!r} must be a positive number")
        points.append((f"{mult:g}x", spec.replace(width_mult=spec.width_mult * mult).stage_channels))
    widths = {p[1][0] for p in points}
    if len(widths) < 2:
        raise MGCompileError("--sweep-width needs at least two different widths, e.g. 1,2,4,8")
    return sorted(points, key=lambda p: p[1])


def fit_exponent(widths: Sequence[float], values: Sequence[float]) -> float:
    """Least-squares slope of log(values) against log(widths)."""
    xs = [math.log(w) for w in widths]
    ys = [math.log(v) for v in values]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx


@dataclass
class Sweep:
    """Counts per width of the network (``params``, ``macs``) and of its ``base`` network.

    For a base network REF both are the same network. Keys follow the audit's:
    ``params``, ``macs``, ``base`` (``{"params", "macs"}``), ``ratio``.
    """

    name: str
    multigrid: bool
    rows: list[dict[str, Any]]
    exponents: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "multigrid": self.multigrid,
                "width": "stage-1 channels (θ, s_g and t fixed)",
                "unit": "MACs (multiply-accumulates of conv, transfer and linear layers)",
                "rows": self.rows, "exponents": self.exponents}


def _stem_at(spec: Spec, channels: tuple[int, ...]) -> int | None:
    if spec.stem_channels is None:
        return None
    return max(2, round(spec.stem_channels * channels[0] / spec.stage_channels[0]))


def sweep_width(spec: Spec, points: Sequence[tuple[str, tuple[int, ...]]]) -> Sweep:
    """Count the network and its base at every width and fit the growth exponents.

    θ, s_g and t stay fixed across widths, so an MG network gains fine levels as it widens.
    """
    rows = []
    for label, channels in points:
        at = spec.replace(channels=channels, width_mult=1.0, stem_channels=_stem_at(spec, channels))
        b = count(expand(at.base()))
        m = count(expand(at)) if spec.is_multigrid else b
        rows.append({"label": label, "width": channels[0], "channels": "-".join(map(str, channels)),
                     "params": m.params, "macs": m.macs, "base": {"params": b.params, "macs": b.macs},
                     "ratio": {"params": m.params / b.params, "macs": m.macs / b.macs}})
    widths = [r["width"] for r in rows]

    def fit(get: Any) -> float:
        return round(fit_exponent(widths, [get(r) for r in rows]), 4)

    exps = {"params": fit(lambda r: r["params"]), "macs": fit(lambda r: r["macs"]),
            "base": {"params": fit(lambda r: r["base"]["params"]), "macs": fit(lambda r: r["base"]["macs"])}}
    return Sweep(spec.name or "model", spec.is_multigrid, rows, exps)
