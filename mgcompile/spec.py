"""The network spec: a frozen, validated description of a base network plus MG parameters.

A spec is the compiler's source program. It is deliberately flat (one field per
knob) so that it maps one-to-one onto CLI flags and YAML keys, and it round-trips
losslessly: ``Spec.from_dict(spec.to_dict()) == spec``.

Multigrid parameters (see ``docs/levels.md``):

* ``group_size`` (s_g): channels per group in fine-level convolutions. ``None``
  means the plain base network.
* ``coarsest`` (θ, the "Coarsest c_in" column of the paper's tables): every width
  >= θ is a fine level; the fully coupled step runs at the first halving *below* θ
  (θ/2 for power-of-two widths). Defaults to 2·s_g.
* ``transfer_nnz`` (t): nonzeros per row of the sparse prolongation; defaults to s_g.
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
from mgcompile.multigrid import CYCLES, TRANSFERS, TRANSITIONS, UNEVEN_GROUPS, MGParams  # noqa: F401 (re-exported)

SPEC_FORMAT_VERSION = 2  # 2 added `variant` and `only_profitable`; version-1 files read unchanged
READABLE_VERSIONS = (1, 2)

STEMS = ("cifar", "imagenet")
ACTIVATIONS = ("post", "pre")


@dataclass(frozen=True)
class PaperRow:
    """Where a spec comes from in the paper and what the paper reports for it."""

    table: str
    params_m: float
    test_acc: str | None = None
    consistent: bool = True  # False: the paper's own number is inconsistent; report, don't assert
    note: str | None = None


@dataclass(frozen=True)
class Spec:
    """A base network (``group_size is None``) or its multigrid-in-channels version."""

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
    group_size: int | None = None
    coarsest: int | None = None
    cycle: str = "multiplicative"
    transfer: str = "sparse"
    transfer_nnz: int | None = None
    transition: str = "paper"
    activation: str = "post"
    uneven_groups: str | None = None
    ignored_layers: tuple[str, ...] = ()
    min_channels: int = 0
    only_profitable: bool = False
    seed: int = 0
    name: str | None = None
    paper: PaperRow | None = None
    version: int = SPEC_FORMAT_VERSION

    def __post_init__(self) -> None:
        for name in ("channels", "blocks", "input_size", "ignored_layers"):  # lists from JSON / Python callers
            if isinstance(value := getattr(self, name), list):
                object.__setattr__(self, name, tuple(value))
        _validate(self)

    # ---- derived values -------------------------------------------------------------
    @property
    def is_multigrid(self) -> bool:
        return self.group_size is not None

    @property
    def mg(self) -> MGParams | None:
        """The MG parameters as their one validated record (``None``: the base network)."""
        if self.group_size is None:
            return None
        return MGParams(group_size=self.group_size, coarsest=self.coarsest, transfer_nnz=self.transfer_nnz,
                        cycle=self.cycle, transfer=self.transfer, transition=self.transition,
                        uneven_groups=self.uneven_groups, seed=self.seed, only_profitable=self.only_profitable)

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
                            min_channels=0, uneven_groups=None)

    def replace(self, **changes: Any) -> "Spec":
        return dataclasses.replace(self, **changes)

    # ---- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, PaperRow):
                value = dataclasses.asdict(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Spec":
        if not isinstance(data, Mapping):
            raise SpecError(f"spec must be a mapping of field: value, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
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
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

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


def scale_width(channels: int, mult: float) -> int:
    """Scale a width by ``mult``, rounding to an even integer (levels halve)."""
    if mult == 1.0:
        return channels
    return max(2, int(round(channels * mult / 2.0)) * 2)


def mg_levels(width: int, theta: int) -> tuple[list[int], int] | None:
    """Fine level widths and the coarsest width of a cycle at ``width`` (the level rule).

    Every width >= θ is a fine level, halving from one to the next; the fully coupled
    step runs at the first width below θ. Returns ``None`` for a block narrower than
    θ (already coarse: it stays the base step).
    """
    if width < theta:
        return None
    fine: list[int] = []
    w = width
    while w >= theta:
        if w % 2:
            raise SpecError(
                f"level width {w} (cycle at width {width}) is odd and cannot be halved; "
                "use channels whose levels down to coarsest stay even"
            )
        fine.append(w)
        w //= 2
    return fine, w


def level_groups(width: int, group_size: int, uneven: str = "error") -> int:
    """Groups of a fine-level step at ``width``: C_j / s_g, one group when C_j <= s_g.

    When s_g does not divide C_j, ``uneven="error"`` raises :class:`SpecError` and
    ``"floor"`` uses the largest group count <= ⌊C_j / s_g⌋ that divides C_j / 2 (groups
    somewhat wider than s_g; dividing the half width keeps grouped transfers valid).
    """
    if width <= group_size:
        return 1
    if width % group_size == 0:
        return width // group_size
    if uneven != "floor":
        raise SpecError(f"group_size {group_size} does not divide width {width}")
    groups = width // group_size
    while (width // 2) % groups:
        groups -= 1
    return groups


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
    value = getattr(spec, name)
    if value not in allowed:
        raise SpecError(f"field '{name}' is {value!r}; allowed values: {', '.join(allowed)}")


def _positive_int(spec: Spec, name: str, *, optional: bool = False) -> None:
    value = getattr(spec, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError(f"field '{name}' must be a positive integer, got {value!r}")


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
    if spec.group_size is None:
        if spec.ignored_layers or spec.min_channels:  # (only_profitable may sit on a base spec: it waits for MG)
            raise SpecError("fields 'ignored_layers'/'min_channels' select steps for MG: they need 'group_size'")
        if not isinstance(spec.only_profitable, bool):
            raise SpecError(f"field 'only_profitable' must be true or false, got {spec.only_profitable!r}")
        for name in ("coarsest", "transfer_nnz"):
            if getattr(spec, name) is not None:
                raise SpecError(f"field '{name}' needs 'group_size' (the MG group size); set group_size or drop {name}")
        for name, allowed in (("cycle", CYCLES), ("transfer", TRANSFERS), ("transition", TRANSITIONS)):
            _choice(spec, name, allowed)
        if spec.uneven_groups is not None:
            _choice(spec, "uneven_groups", UNEVEN_GROUPS)
        if not isinstance(spec.seed, int) or isinstance(spec.seed, bool):
            raise SpecError(f"field 'seed' must be an integer, got {spec.seed!r}")
        return
    spec.mg  # noqa: B018  (MGParams validates every MG field)


def check_stage_divisibility(spec: Spec, policy: str, widths: tuple[int, ...] | None = None) -> None:
    """With ``policy`` error, name the stage and level whose width s_g does not divide (before any expansion)."""
    if spec.mg is None or policy == "floor":
        return
    for stage, width in enumerate(widths or spec.stage_channels, start=1):
        levels = mg_levels(width, spec.mg.theta)
        if levels is None:
            continue
        for level, w in enumerate(levels[0]):
            try:
                level_groups(w, spec.mg.group_size)
            except SpecError:
                raise SpecError(
                    f"group_size {spec.mg.group_size} does not divide the {w} channels of stage{stage} level{level}; "
                    f"choose a group size that divides every fine width ({', '.join(map(str, levels[0]))}) "
                    "or set uneven_groups: floor"
                ) from None
