"""Log-log plot of a width sweep: params and MACs of the base and the MG network."""

from __future__ import annotations

import os
from pathlib import Path

from mgcompile.figures import save_figure
from mgcompile.audit.sweep import Sweep
from mgcompile.errors import MGCompileError

FORMATS = (".png", ".svg", ".pdf")


def plot_sweep(sweep: Sweep, path: str | os.PathLike) -> Path:
    """Draw both curves (with their fitted exponents) into ``path`` (.png/.svg/.pdf), atomically."""
    target = Path(path)
    if target.suffix.lower() not in FORMATS:
        raise MGCompileError(f"--plot {target}: unsupported image type; use one of {', '.join(FORMATS)}")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    widths = [r["width"] for r in sweep.rows]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2))
    for ax, key, label in ((axes[0], "params", "parameters"), (axes[1], "macs", "MACs per image")):
        base = [r["base"][key] for r in sweep.rows]
        ax.loglog(widths, base, "o-", color="tab:gray", base=2,
                  label=f"base (slope {sweep.exponents['base'][key]:.2f})")
        if sweep.multigrid:
            ax.loglog(widths, [r[key] for r in sweep.rows], "s-", color="tab:blue", base=2,
                      label=f"MG (slope {sweep.exponents[key]:.2f})")
        ax.set_xlabel("width: stage-1 channels c (log scale)")
        ax.set_ylabel(f"{label} (log scale)")
        ax.set_title(f"{label} vs width")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.suptitle(f"{sweep.name}: width scaling (θ, s_g fixed; MACs = conv, transfer, linear)")
    fig.tight_layout()
    return save_figure(fig, target, dpi=110)
