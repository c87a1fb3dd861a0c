"""The network spec: a frozen, validated description of a base network plus its MG parameters.

A spec is the compiler's source program: the base network's fields (one per knob, as the
CLI flags and YAML keys), ``seed`` (the base network's init; the MG seed defaults to it),
the user's step selectors (``ignored_layers``, ``min_channels``), ``multigrid`` (the one
:class:`~mgcompile.multigrid.MGParams` record, ``None`` for a base network with default MG
settings) and ``step_overrides`` (per-step decisions, a
:class:`~mgcompile.multigrid.StepOverrides`). It round-trips losslessly:
``Spec.from_dict(spec.to_dict()) == spec``.

The MG fields are also flat *views*: ``Spec(group_size=32)``, ``spec.group_size``,
``spec.replace(group_size=16, coarsest=32)`` read and write ``spec.multigrid``.

Spec file format 3 (written by :meth:`Spec.to_dict`/``to_yaml``): the base network's fields,
``seed``, the selectors, then the nested ``multigrid:`` block (every MGParams field; ``null``
for a base network with default MG settings), then ``step_overrides:`` (``{step: base |
{coarsest: θ}}``), then ``name``, ``paper``, ``version``. Formats 1 and 2 (flat MG keys) still
load and build the identical network; a spec read from such a file writes that flat form back.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from mgcompile.errors import SpecError, first_line
from mgcompile.multigrid import (CYCLES, FIELD_NAMES, TRANSFERS, TRANSITIONS, UNEVEN_GROUPS,  # noqa: F401 (re-exported)
                                 MGParams, StepOverrides, check_stage_divisibility, level_groups, mg_levels)
from mgcompile.multigrid import check_choice, check_positive_int

SPEC_FORMAT_VERSION = 3  # 3 nests the MG fields in `multigrid` and adds `step_overrides`; 2 added `variant` and
#                          `only_profitable`; version-1 and -2 files read unchanged
READABLE_VERSIONS = (1, 2, 3)

STEMS = ("cifar", "imagenet")
ACTIVATIONS = ("post", "pre")

# The flat spec keys that are views of `Spec.multigrid` (every MG field but `seed`, which is `Spec.seed`)
MG_VIEWS: tuple[str, ...] = tuple(n for n in FIELD_NAMES if n != "seed")
# Formats 1 and 2: every key, in the order mgcompile wrote them
FLAT_KEYS = ("arch", "variant", "block", "channels", "blocks", "stem", "stem_channels", "width_mult", "in_channels",
             "num_classes", "input_size", "group_size", "coarsest", "cycle", "transfer", "transfer_nnz", "transition",
             "activation", "uneven_groups", "ignored_layers", "min_channels", "only_profitable", "seed", "name", "paper",
             "version")


@dataclass(frozen=True)
class PaperRow:
    """Where a spec comes from in the paper and what the paper reports for it."""

    table: str
    params_m: float
    test_acc: str | None = None
    consistent: bool = True  # False: the paper's own number is inconsistent; report, don't assert
    note: str | None = None


@dataclass(frozen=True, init=False)
class Spec:
    """A base network (``multigrid is None`` or no group size) or its multigrid-in-channels version.

    Construct with keywords: every field, and the flat MG views (``group_size=...``), which are
    applied on top of ``multigrid``.
    """

    arch: str = "resnet"
    variant: str | None = None
    block: str = "basic"
    channels: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (3, 4, 6, 3)
    stem: str = "imagenet"
    stem_channels: int | None = None
    width_mult: float = 1.0
    in_channels: int = 3
    num_classes: int = 1000
    input_size: tuple[int, int] = (224, 224)
    activation: str = "post"
    ignored_layers: tuple[str, ...] = ()
    min_channels: int = 0
    seed: int = 0
    multigrid: MGParams | None = None
    step_overrides: StepOverrides = StepOverrides()
    name: str | None = None
    paper: PaperRow | None = None
    version: int = SPEC_FORMAT_VERSION

    def __init__(self, **values: Any) -> None:
        views = {k: values.pop(k) for k in MG_VIEWS if k in values}
        for f in fields(Spec):
            object.__setattr__(self, f.name, values.pop(f.name) if f.name in values else f.default)
        if values:
            raise TypeError(f"Spec() got unexpected keyword argument(s) {', '.join(sorted(values))}")
        mg = self.multigrid
        if isinstance(mg, Mapping):
            mg = MGParams.from_dict(mg)
        if views:
            mg = (mg if isinstance(mg, MGParams) else MGParams()).replace(**views)
        if mg == MGParams():
            mg = None  # nothing MG set: the base network
        object.__setattr__(self, "multigrid", mg)
        object.__setattr__(self, "step_overrides", StepOverrides.of(self.step_overrides))
        self.__post_init__()

    def __post_init__(self) -> None:
        for name in ("channels", "blocks", "input_size", "ignored_layers"):  # lists from JSON / Python callers
            if isinstance(value := getattr(self, name), list):
                object.__setattr__(self, name, tuple(value))
        _validate(self)

    # ---- the flat MG views -------------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """``spec.group_size`` etc.: ``multigrid.<name>`` for every MG field but ``seed`` (its default without
        MG parameters). Only reached when normal attribute lookup fails."""
        if name in MG_VIEWS:
            mg = self.__dict__.get("multigrid")
            return getattr(mg if mg is not None else MGParams(), name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ---- derived values -------------------------------------------------------------
    @property
    def is_multigrid(self) -> bool:
        return self.group_size is not None

    @property
    def mg(self) -> MGParams | None:
        """The MG record with its seed resolved (the spec's when it names none); ``None``: the base network."""
        if self.multigrid is None or self.multigrid.group_size is None:
            return None
        return self.multigrid if self.multigrid.seed is not None else self.multigrid.replace(seed=self.seed)

    @property
    def theta(self) -> int | None:
        """The level threshold θ (``coarsest``), defaulted to 2·s_g."""
        return None if self.mg is None else self.mg.theta

    @property
    def nnz(self) -> int | None:
        """Requested nonzeros per row of the sparse P (before per-level clamping)."""
        return None if self.mg is None else self.mg.nnz

    @property
    def stage_channels(self) -> tuple[int, ...]:
        """Channels per stage after the width multiplier."""
        return tuple(scale_width(c, self.width_mult) for c in self.channels)

    @property
    def stem_width(self) -> int:
        if self.stem_channels is not None:
            return scale_width(self.stem_channels, self.width_mult)
        return self.stage_channels[0]

    def base(self) -> "Spec":
        """The same network without multigrid (the comparison baseline)."""
        return self.replace(group_size=None, coarsest=None, transfer_nnz=None, paper=None, ignored_layers=(),
                            min_channels=0, uneven_groups=None, step_overrides=StepOverrides())

    def replace(self, **changes: Any) -> "Spec":
        """A copy with ``changes`` (fields or flat MG views)."""
        return Spec(**{**{f.name: getattr(self, f.name) for f in fields(self)}, **changes})

    # ---- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The spec file form of ``version`` (3: nested ``multigrid``; 1 and 2: flat, as they were written)."""
        flat = self.version < 3 and not self.step_overrides and (self.multigrid is None or self.multigrid.seed is None)
        out: dict[str, Any] = {}
        for key in FLAT_KEYS if flat else [f.name for f in fields(self)]:
            value = getattr(self, key)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, (PaperRow, MGParams)):
                value = dataclasses.asdict(value)
            elif isinstance(value, StepOverrides):
                value = value.to_dict()
            out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Spec":
        """Read any readable format (the flat MG keys of formats 1 and 2, or the ``multigrid`` block)."""
        if not isinstance(data, Mapping):
            raise SpecError(f"spec must be a mapping of field: value, got {type(data).__name__}")
        known = set(SPEC_KEYS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise SpecError(
                f"unknown spec field(s) {', '.join(unknown)}; allowed fields: {', '.join(sorted(known))}"
            )
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in ("channels", "blocks", "input_size"):
                value = _int_tuple(key, value)
            elif key == "ignored_layers":
                value = _str_tuple(key, value)
            elif key == "paper" and value is not None:
                if not isinstance(value, Mapping):
                    raise SpecError("field 'paper' must be a mapping with table and params_m")
                try:
                    value = PaperRow(**value)
                except TypeError as exc:
                    raise SpecError(f"field 'paper': {exc}") from None
            kwargs[key] = value
        return cls(**kwargs)

    def to_yaml(self) -> str:
        data = self.to_dict()
        if "multigrid" not in data:  # formats 1 and 2, as they were written
            return yaml.safe_dump(data, sort_keys=False, default_flow_style=None)
        return yaml.dump(data, Dumper=_BlockDumper, sort_keys=False, default_flow_style=False, allow_unicode=True)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_file(cls, path: str | Path) -> "Spec":
        p = Path(path)
        if not p.is_file():
            raise SpecError(f"spec file {p} does not exist; pass a .yaml/.json spec or a registry name (see `mgcompile list`)")
        try:
            text = p.read_text()
            data = json.loads(text) if p.suffix == ".json" else yaml.safe_load(text)
        except (yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            first = first_line(exc)
            raise SpecError(f"spec file {p} is not valid YAML/JSON ({first}); fix its syntax") from None
        if not isinstance(data, dict) or not data:
            raise SpecError(f"spec file {p} is empty or not a mapping of field: value; see specs/paper/*.yaml for the format")
        return cls.from_dict(data)


class _BlockDumper(yaml.SafeDumper):
    """Format 3's YAML: mappings (the ``multigrid:`` block) in block style, lists on one line."""


_BlockDumper.add_representer(list, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def scale_width(channels: int, mult: float) -> int:
    """Scale a width by ``mult``, rounding to an even integer (levels halve)."""
    if mult == 1.0:
        return channels
    return max(2, int(round(channels * mult / 2.0)) * 2)


def _int_tuple(key: str, value: Any) -> tuple[int, ...]:
    if isinstance(value, str):
        value = [v for v in value.replace("x", ",").split(",") if v.strip()]
    if isinstance(value, int):
        value = [value]
    try:
        items = [v.strip() if isinstance(v, str) else v for v in value]
        if any(isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()) for v in items):
            raise ValueError
        return tuple(int(v) for v in items)
    except (TypeError, ValueError):
        raise SpecError(f"field '{key}' must be a list of integers like 64,128,256,512, got {value!r}") from None


def _str_tuple(key: str, value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise SpecError(f"field '{key}' must be a list of name patterns like ['stage4.*'], got {value!r}")
    return tuple(value)


def skip_reason(step: str, width: int, ignored_layers: tuple[str, ...], min_channels: int) -> str | None:
    """Why the user excluded a step from MG conversion (``--ignored-layers`` / ``--min-channels``), if they did."""
    pattern = next((p for p in ignored_layers if fnmatch.fnmatchcase(step, p)), None)
    if pattern is not None:
        return f"matches ignored pattern {pattern!r}"
    if width < min_channels:
        return f"width {width} < min_channels={min_channels}"
    return None


def _choice(spec: Spec, name: str, allowed: tuple[str, ...]) -> None:
    check_choice(name, getattr(spec, name), allowed)


def _positive_int(spec: Spec, name: str, *, optional: bool = False) -> None:
    check_positive_int(name, getattr(spec, name), optional=optional)


def _validate(spec: Spec) -> None:
    """Checks every spec passes whatever its family (the family checks the rest, see ``models.validate``)."""
    if spec.version not in READABLE_VERSIONS:
        raise SpecError(f"field 'version' is {spec.version!r}; this mgcompile reads spec formats "
                        f"{', '.join(map(str, READABLE_VERSIONS))}")
    if not isinstance(spec.arch, str) or (spec.variant is not None and not isinstance(spec.variant, str)):
        raise SpecError(f"fields 'arch'/'variant' must be names, got {spec.arch!r}/{spec.variant!r}")
    _choice(spec, "stem", STEMS)
    _choice(spec, "activation", ACTIVATIONS)
    for name in ("in_channels", "num_classes"):
        _positive_int(spec, name)
    _positive_int(spec, "stem_channels", optional=True)
    if not isinstance(spec.ignored_layers, tuple) or not all(isinstance(p, str) for p in spec.ignored_layers):
        raise SpecError(f"field 'ignored_layers' must be a list of name patterns, got {spec.ignored_layers!r}")
    if isinstance(spec.min_channels, bool) or not isinstance(spec.min_channels, int) or spec.min_channels < 0:
        raise SpecError(f"field 'min_channels' must be a non-negative integer, got {spec.min_channels!r}")
    if not isinstance(spec.width_mult, (int, float)) or isinstance(spec.width_mult, bool) or spec.width_mult <= 0:
        raise SpecError(f"field 'width_mult' must be a positive number, got {spec.width_mult!r}")
    if not spec.channels or any(c < 1 for c in spec.channels):
        raise SpecError(f"field 'channels' must list positive widths per stage, got {list(spec.channels)}")
    if len(spec.blocks) != len(spec.channels) or any(b < 1 for b in spec.blocks):
        raise SpecError(
            f"field 'blocks' must give a positive block count for each of the {len(spec.channels)} stages, "
            f"got {list(spec.blocks)}"
        )
    if len(spec.input_size) != 2 or any(s < 1 for s in spec.input_size):
        raise SpecError(f"field 'input_size' must be H,W (two positive integers), got {list(spec.input_size)}")
    if not isinstance(spec.seed, int) or isinstance(spec.seed, bool):
        raise SpecError(f"field 'seed' must be an integer, got {spec.seed!r}")
    if spec.multigrid is not None and not isinstance(spec.multigrid, MGParams):
        raise SpecError(f"field 'multigrid' must be a mapping of MG field: value, got {spec.multigrid!r}")
    if spec.group_size is None and (spec.ignored_layers or spec.min_channels or spec.step_overrides):
        raise SpecError("fields 'ignored_layers'/'min_channels'/'step_overrides' select steps for MG: "
                        "they need 'group_size'")
    # (every MG field was validated by MGParams when the record was made)


# Every key a spec file may hold: the fields and the flat MG views of formats 1 and 2
SPEC_KEYS: tuple[str, ...] = tuple(f.name for f in fields(Spec)) + MG_VIEWS
