"""The two records every model family fills: its :class:`Family` and its named :class:`ModelEntry`\\ s.

A family file (``models/<family>.py``) holds the family's spec frontend (spec -> IR,
one ``residual`` macro per step, bodies from the templates in ``mgcompile/steps.py``),
registers it with :func:`register_family`, and names its models with
:func:`register_model` (timm style). Nothing else lists families: ``Spec`` validation,
``mgcompile list``, name resolution and the CLI read these records.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable

from mgcompile.errors import SpecError
from mgcompile.ir.meta import GraphMeta
from mgcompile.ir.roles import mark_residual_steps
from mgcompile.multigrid import check_stage_divisibility, resolve_uneven
from mgcompile.spec import Spec, skip_reason

if TYPE_CHECKING:
    from mgcompile.ir.graph import Graph


@dataclass(frozen=True)
class Family:
    """One architecture family.

    * ``build``: spec -> the base network's IR (MG is applied by passes, never here).
    * ``blocks``: the spec ``block`` values the family accepts.
    * ``uneven``: its uneven-groups default (``error`` only for the paper's ResNets), stated
      here once; :func:`mgcompile.multigrid.resolve_uneven` applies it.
    * ``validate``: family checks beyond the generic ones (a stage count, a variant).
    * ``stage_widths``: spec -> the width of each stage's steps (default ``spec.stage_channels``);
      :func:`family_of` checks that s_g divides their fine levels when the policy is ``error``.
    * ``torchvision``: torchvision models of the same architecture (for the docs and
      ``mgcompile list``; ``torchvision:NAME`` converts the module instead).
    * ``module_names``: fnmatch patterns of torchvision / timm model names (and lower-case
      class names) of this family: a converted module of the family takes its ``uneven``
      default (RegNet's 80/400-wide levels convert with ``floor``, ResNets keep ``error``).
    """

    arch: str
    build: Callable[[Spec], "Graph"]
    blocks: tuple[str, ...]
    uneven: str = "floor"
    validate: Callable[[Spec], None] | None = None
    stage_widths: Callable[[Spec], tuple[int, ...]] | None = None
    torchvision: tuple[str, ...] = ()
    module_names: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class ModelEntry:
    name: str
    make: Callable[[], Spec]
    description: str


FAMILIES: dict[str, Family] = {}
MODELS: dict[str, ModelEntry] = {}


def register_family(family: Family) -> Family:
    FAMILIES[family.arch] = family
    return family


def register_model(name: str, description: str) -> Callable[[Callable[[], Spec]], Callable[[], Spec]]:
    def deco(fn: Callable[[], Spec]) -> Callable[[], Spec]:
        MODELS[name] = ModelEntry(name, fn, description)
        return fn

    return deco


def family_of(spec: Spec) -> Family:
    """The spec's family, its ``block`` and family checks validated (one line naming the field)."""
    family = FAMILIES.get(spec.arch)
    if family is None:
        raise SpecError(f"field 'arch' is {spec.arch!r}; allowed values: {', '.join(sorted(FAMILIES))}")
    if spec.block not in family.blocks:
        raise SpecError(f"field 'block' is {spec.block!r} for arch {spec.arch}; allowed values: {', '.join(family.blocks)}")
    if family.validate is not None:
        family.validate(spec)
    widths = family.stage_widths(spec) if family.stage_widths is not None else spec.stage_channels
    check_stage_divisibility(spec.mg, uneven_policy(spec), widths)
    return family


def family_of_module(name: str) -> Family | None:
    """The family a torchvision/timm model name or a class name belongs to (``module_names``), if any."""
    import fnmatch

    key = name.split(":")[-1].lower()
    return next((f for f in FAMILIES.values() if any(fnmatch.fnmatchcase(key, p) for p in f.module_names)), None)


def uneven_policy(spec: Spec) -> str:
    """What a fine level s_g does not divide gets: the spec's choice, else its family's default."""
    family = FAMILIES.get(spec.arch)
    return resolve_uneven(spec.uneven_groups, family.uneven if family is not None else None)


def graph_meta(spec: Spec, uneven: str) -> GraphMeta:
    """Graph-level annotations every pass may read: the spec, the MG parameters (uneven policy resolved) and the
    spec's per-step overrides."""
    return GraphMeta(spec=spec.to_dict(), multigrid=spec.mg.replace(uneven_groups=uneven) if spec.mg else None,
                     overrides=spec.step_overrides.to_dict())


def graph_from_spec(spec: Spec) -> "Graph":
    """The base network of ``spec`` as an IR (step macros, MG parameters in graph meta)."""
    family = family_of(spec)
    graph = mark_residual_steps(family.build(spec))  # each step's input and output, by role
    graph.meta_graph = graph_meta(spec, uneven_policy(spec))
    if spec.ignored_layers or spec.min_channels:
        graph.meta_graph.skip = {
            n: reason for n in graph.nodes("residual")
            if (reason := skip_reason(n, graph.attrs(n)["out_channels"], spec.ignored_layers, spec.min_channels))
        }
    return graph


def add_stages(g: "Graph", x: str, width: int, stages: "Iterable[Iterable[dict[str, Any]]]",
               enter: "Callable[[int, str, int], tuple[str, int]] | None" = None) -> tuple[str, int]:
    """Every family's stage loop: one ``residual`` macro per step, named ``stage<s>.block<b>`` (s from 1).

    ``stages`` yields, per stage, the template attributes of its steps (``make_step(...)``) in order;
    ``enter(s, x, width)`` adds layers ahead of stage s (ConvNeXt's downsampling) and returns the new
    (node, width). Returns the last step's output node and width.
    """
    for s, steps in enumerate(stages, start=1):
        if enter is not None:
            x, width = enter(s, x, width)
        for b, step in enumerate(steps):
            name = f"stage{s}.block{b}"
            x = g.add(name, "residual", [x], meta={"stage": f"stage{s}", "step": name}, **step)
            width = step["out_channels"]
    return x, width
