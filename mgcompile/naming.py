"""Self-describing model names in timm style (``mg_resnet34_g32c64``)."""

from __future__ import annotations

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
