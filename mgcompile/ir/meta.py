"""The graph-level meta: typed records under known fields, serialised only at the file boundary.

``graph.meta_graph`` is a :class:`GraphMeta`. Passes and tools read and write its
fields (``graph.meta_graph.multigrid.theta``, ``graph.meta_graph.steps[name].status``);
``to_dict``/``from_dict`` are the ``graph.json`` form. The MG parameters are the
:class:`~mgcompile.multigrid.MGParams` record itself, written under its own field
names; a spec's MG fields are stored once (in ``multigrid``) and put back into the
spec when read. ``from_dict`` also reads IR version 1 (``theta``/``nnz`` for
``coarsest``/``transfer_nnz``, the MG fields written twice).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from mgcompile.multigrid import MGParams

MG_FIELDS = tuple(f.name for f in dataclasses.fields(MGParams))


@dataclass
class StepStatus:
    """What became of one residual step (``expand_multigrid_cycles``): ``status`` cycle | kept | coarse | skipped,
    with a ``reason`` unless it is a cycle; a cycle's fine widths, coarsest width, cycle and transfer kind, and
    the sparse transfer's nonzeros per level."""

    width: int
    status: str = ""
    reason: str | None = None
    fine: list[int] | None = None
    coarsest: int | None = None
    cycle: str | None = None
    transfer: str | None = None
    nnz: list[int] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The form audits print and ``graph.json`` stores (fields that are not set are left out)."""
        return {f.name: v for f in dataclasses.fields(self) if (v := getattr(self, f.name)) is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "StepStatus":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class GraphMeta:
    """Graph-level annotations.

    * ``spec``: the spec a network was built from (``Spec.to_dict()``; ``None`` on the module route).
    * ``multigrid``: the MG parameters the passes apply (uneven-groups policy resolved); ``None``: a base network.
    * ``overrides``: per-step decisions by exact step name (issue 16's per-step plans).
    * ``skip``: steps the user's selectors exclude, with why (``ignored_layers``, ``min_channels``).
    * ``steps``: each residual step's :class:`StepStatus`; ``notes``: what the passes noted.
    * ``opaque``: rebuild records of opaque layers; ``conversion``: the conversion report (module route);
      ``base_graph``: the original network's IR (``Graph.to_dict()``), for side-by-side audits.
    * ``inference``: the inference lowering's derivations (``backends/inference.py``).
    * ``sliced_step``: the step a graph was cut out of (``ir.slice``).
    * ``origin``, ``calibration``: room for issue 15's records.
    * ``pass_log``: ``(pass, changed)`` for every pass ``run_passes`` ran to make this graph (not saved).
    """

    spec: dict[str, Any] | None = None
    multigrid: MGParams | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    skip: dict[str, str] = field(default_factory=dict)
    steps: dict[str, StepStatus] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    opaque: dict[str, Any] = field(default_factory=dict)
    conversion: dict[str, Any] | None = None
    base_graph: dict[str, Any] | None = None
    inference: dict[str, Any] | None = None
    sliced_step: str | None = None
    origin: dict[str, Any] | None = None
    calibration: dict[str, Any] | None = None
    pass_log: list[tuple[str, bool]] = field(default_factory=list, compare=False)  # (pass, changed); not saved

    def step(self, name: str, width: int) -> StepStatus:
        """The status record of step ``name`` (created, at ``width``, the first time it is asked for)."""
        if name not in self.steps:
            self.steps[name] = StepStatus(width=width)
        return self.steps[name]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.spec is not None:
            out["spec"] = _spec_without_mg(self.spec, self.multigrid)
        if self.multigrid is not None:
            out["multigrid"] = dataclasses.asdict(self.multigrid)
        for name in ("overrides", "skip", "opaque"):
            if getattr(self, name):
                out[name] = dict(getattr(self, name))
        out["notes"] = list(self.notes)
        out["steps"] = {k: v.to_dict() for k, v in self.steps.items()}
        for name in ("conversion", "base_graph", "inference", "sliced_step", "origin", "calibration"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "GraphMeta":
        """Read the ``graph.json`` form, today's or IR version 1's."""
        data = dict(data)
        mg = data.pop("multigrid", None)
        multigrid = None
        if mg:
            multigrid = MGParams.from_meta(mg) if "theta" in mg else MGParams(**mg)
        spec = data.pop("spec", None)
        if spec is not None:
            spec = _spec_with_mg(dict(spec), multigrid)
        steps = {k: StepStatus.from_dict(v) for k, v in data.pop("steps", {}).items()}
        if "step" in data:  # (version 1: a sliced step)
            data["sliced_step"] = data.pop("step")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            from mgcompile.errors import GraphError

            raise GraphError(f"graph meta has unknown field(s) {', '.join(sorted(unknown))}; a newer mgcompile wrote it")
        return cls(spec=spec, multigrid=multigrid, steps=steps, **{k: v for k, v in data.items() if v is not None})


def _spec_without_mg(spec: Mapping[str, Any], mg: MGParams | None) -> dict[str, Any]:
    """A spec's MG fields are stored once, in ``multigrid``: drop those the record holds with the same value
    (a flat spec's; a format-3 spec nests its MG fields and keeps its own ``seed``)."""
    if mg is None or "multigrid" in spec:
        return dict(spec)
    record = dataclasses.asdict(mg)
    return {k: v for k, v in spec.items() if not (k in MG_FIELDS and record[k] == v)}


def _spec_with_mg(spec: dict[str, Any], mg: MGParams | None) -> dict[str, Any]:
    """Put back the MG fields :func:`_spec_without_mg` left out (a spec with a nested ``multigrid`` block has none)."""
    if mg is None or "multigrid" in spec:
        return spec
    record = dataclasses.asdict(mg)
    return {**spec, **{k: record[k] for k in MG_FIELDS if k not in spec}}
