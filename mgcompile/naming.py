"""Self-describing model names in timm style (``mg_resnet34_g32c64``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # annotations only: naming is a bottom utility (docs/design.md, Layers)
    from mgcompile.refs import Resolved
    from mgcompile.spec import Spec


def canonical_name(spec: Spec) -> str:
    """A name that says what the spec is; MG names round-trip through the registry for default widths."""
    base = (spec.name or spec.arch)
    if base.startswith("mg_"):
        return base
    if not spec.is_multigrid:
        return base
    name = f"mg_{base}_g{spec.group_size}c{spec.theta}"
    if spec.cycle == "additive":
        name += "_add"
    if spec.transfer == "grouped":
        name += "_grouped"
    if spec.transition == "dw_stride":
        name += "_dw"
    elif spec.transition == "keep" and spec.block == "basic":
        name += "_keep"
    if spec.activation == "pre":
        name += "_pre"
    return name


def model_name(resolved: "Resolved") -> str:
    """The name of whatever a REF resolved to: output folders, run folders and titles use it.

    Specs get :func:`canonical_name`; converted modules ``mg_<module>_g<s_g>c<θ>``; anything
    else the REF's file or folder name. Always a safe file name (no ``:``, ``/`` or ``.``).
    """
    if resolved.spec is not None:
        name = canonical_name(resolved.spec)
    elif resolved.report:
        mg = resolved.report["multigrid"]
        name = f"mg_{resolved.report['name']}_g{mg['group_size']}c{mg['theta']}"
    else:
        name = Path(resolved.ref.rstrip("/")).stem
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)
