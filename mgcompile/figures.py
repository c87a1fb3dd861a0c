"""Saving matplotlib figures: atomically, and marked as mgcompile's (so a re-run may replace them)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mgcompile.atomic import atomic_path
from mgcompile.provenance import CREATOR

_META_KEY = {"png": "Software", "svg": "Creator", "pdf": "Creator"}


def save_figure(fig: Any, path: str | os.PathLike, dpi: int = 120) -> Path:
    """Write ``fig`` to ``path`` (.png/.svg/.pdf) with a creator mark; the figure is closed afterwards."""
    import matplotlib.pyplot as plt

    target = Path(path)
    fmt = target.suffix.lower().lstrip(".")
    try:
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format=fmt, dpi=dpi, metadata={_META_KEY[fmt]: CREATOR})
    finally:
        plt.close(fig)
    return target
