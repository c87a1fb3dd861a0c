"""The MG parameters and the level rule: one frozen record, its defaults and validation, and the one
place that decides levels, group counts, divisibility and the uneven-groups policy.

``Spec.multigrid``, ``mgcompile.convert``, the CLI flags (generated from the fields'
``metadata["cli"]``), the module route's keys and the graph meta a saved folder holds
all go through :class:`MGParams`; nothing else validates a group size or a θ, and
nothing else lists the MG fields. A new MG setting is a new field here (with its
``cli`` metadata) plus the code that uses it. See ``docs/levels.md`` for the meaning
of each parameter.

The uneven-groups policy (what a fine width s_g does not divide gets) is resolved by
:func:`resolve_uneven`: the record's explicit value, else the family's default (spec
routes, and converted modules of a known family), else the step kind's default, else
``floor``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from mgcompile.errors import SpecError

CYCLES = ("multiplicative", "additive")
TRANSFERS = ("sparse", "grouped")
TRANSITIONS = ("paper", "dw_stride", "keep")
UNEVEN_GROUPS = ("error", "floor")

# graph-meta / conversion-report key of a field, where it differs from the field name (those values are resolved)
META_KEYS = {"coarsest": "theta", "transfer_nnz": "nnz"}


def check_positive_int(name: str, value: Any, *, optional: bool = False, least: int = 1) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        what = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise SpecError(f"field '{name}' must be {what}, got {value!r}")


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(f"field '{name}' is {value!r}; allowed values: {', '.join(allowed)}")


def _cli(help: str, *, short: str | None = None, least: int | None = None,
         choices: tuple[str, ...] | None = None) -> dict[str, Any]:
    """A field's command-line flag, as data (``cli/options.py`` turns it into a click option)."""
    return {"cli": {"help": help, "short": short, "least": least, "choices": choices}}


@dataclass(frozen=True)
class MGParams:
    """Multigrid-in-channels parameters, network-wide.

    * ``group_size`` (s_g): channels per group on fine levels (``None``: no MG yet; the other
      settings wait for a group size, as on a base spec that names its transition).
    * ``coarsest`` (θ): widths >= θ are fine levels; the fully coupled step runs at the
      first halving below θ. Default 2·s_g.
    * ``transfer_nnz`` (t): nonzeros per row of the sparse P. Default s_g.
    * ``cycle``, ``transfer``, ``transition``: see ``docs/levels.md``.
    * ``uneven_groups``: a fine width s_g does not divide: ``error`` or ``floor``
      (``None``: resolved by :func:`resolve_uneven`).
    * ``seed``: the sparse transfers' fixed permutations (``None``: the spec's seed).
    * ``only_profitable``: keep a step whose cycle would have as many or more parameters
      or MACs than the step (the conversion route and the newer registry families);
      ``False`` builds every cycle a spec asks for (the paper's specs) and notes the costly ones.

    A field's ``metadata["cli"]`` makes it a flag of every REF-taking command (``--group-size``
    for ``group_size``) and a key the module route passes to ``convert``; ``seed`` and
    ``only_profitable`` have none (``--seed`` sets ``Spec.seed``; module routes force
    ``only_profitable``).
    """

    group_size: int | None = field(default=None, metadata=_cli(
        "MG group size s_g (channels per group on fine levels). Without it: the base network.", short="-g", least=1))
    coarsest: int | None = field(default=None, metadata=_cli(
        "Level threshold θ ('Coarsest c_in' in the paper's tables): widths >= θ are fine levels; the fully coupled "
        "step runs at the first halving below θ. Default 2*s_g.", short="-c", least=2))
    cycle: str = field(default="multiplicative", metadata=_cli("MG cycle (default multiplicative, Algorithm 1).",
                                                               choices=CYCLES))
    transfer: str = field(default="sparse", metadata=_cli(
        "Restriction/prolongation kind (default sparse, the paper's).", choices=TRANSFERS))
    transfer_nnz: int | None = field(default=None, metadata=_cli(
        "Nonzeros per row of the sparse P (t; default s_g).", least=1))
    transition: str = field(default="paper", metadata=_cli(
        "Channel-doubling stage transition (default paper).", choices=TRANSITIONS))
    uneven_groups: str | None = field(default=None, metadata=_cli(
        "A fine level s_g does not divide: error (ResNet default) or floor (⌊C_j/s_g⌋ wider groups; "
        "MobileNetV2 default).", choices=UNEVEN_GROUPS))
    seed: int | None = None
    only_profitable: bool = False

    def __post_init__(self) -> None:
        check_positive_int("group_size", self.group_size, optional=True)
        if self.group_size is None:
            for name in ("coarsest", "transfer_nnz"):
                if getattr(self, name) is not None:
                    raise SpecError(f"field '{name}' needs 'group_size' (the MG group size); "
                                    f"set group_size or drop {name}")
        check_positive_int("coarsest", self.coarsest, optional=True, least=2)
        check_positive_int("transfer_nnz", self.transfer_nnz, optional=True)
        check_choice("cycle", self.cycle, CYCLES)
        check_choice("transfer", self.transfer, TRANSFERS)
        check_choice("transition", self.transition, TRANSITIONS)
        if self.uneven_groups is not None:
            check_choice("uneven_groups", self.uneven_groups, UNEVEN_GROUPS)
        if self.seed is not None and (not isinstance(self.seed, int) or isinstance(self.seed, bool)):
            raise SpecError(f"field 'seed' must be an integer, got {self.seed!r}")
        if not isinstance(self.only_profitable, bool):
            raise SpecError(f"field 'only_profitable' must be true or false, got {self.only_profitable!r}")

    @property
    def theta(self) -> int:
        assert self.group_size is not None, "θ needs a group size"
        return self.coarsest if self.coarsest is not None else 2 * self.group_size

    @property
    def nnz(self) -> int:
        assert self.group_size is not None, "t needs a group size"
        return self.transfer_nnz if self.transfer_nnz is not None else self.group_size

    def uneven(self, default: str) -> str:
        return self.uneven_groups or default

    def replace(self, **changes: Any) -> "MGParams":
        return dataclasses.replace(self, **changes)

    # ---- the file forms ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The spec file's ``multigrid:`` block: every field as set (``None`` = its default)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MGParams":
        if not isinstance(data, Mapping):
            raise SpecError(f"field 'multigrid' must be a mapping of MG field: value, got {type(data).__name__}")
        unknown = sorted(set(data) - set(FIELD_NAMES))
        if unknown:
            raise SpecError(f"unknown multigrid field(s) {', '.join(unknown)}; allowed: {', '.join(FIELD_NAMES)}")
        return cls(**data)

    def to_meta(self, uneven_default: str | None = None) -> dict[str, Any]:
        """The graph meta / conversion report / export metadata form: every field, θ and t resolved
        (under the keys ``theta`` and ``nnz``), the uneven policy resolved with ``uneven_default``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "coarsest":
                value = self.theta
            elif f.name == "transfer_nnz":
                value = self.nnz
            elif f.name == "uneven_groups":
                value = value or uneven_default
            out[META_KEYS.get(f.name, f.name)] = value
        return out

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "MGParams":
        """Read the graph meta form back (a key a graph saved before its field existed reads as the default;
        ``only_profitable`` and ``seed`` default to False and 0, as mgcompile wrote them)."""
        kwargs: dict[str, Any] = {"seed": 0}
        for f in dataclasses.fields(cls):
            key = META_KEYS.get(f.name, f.name)
            if key in meta:
                kwargs[f.name] = meta[key]
        kwargs["only_profitable"] = bool(kwargs.get("only_profitable", False))
        return cls(**kwargs)


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(MGParams))


def cli_fields() -> list[dataclasses.Field]:
    """The MG fields that are command-line flags and module-route keys (``metadata["cli"]``), in order."""
    return [f for f in dataclasses.fields(MGParams) if f.metadata.get("cli")]


def split_mg(values: Mapping[str, Any], names: Iterable[str] = FIELD_NAMES) -> tuple[dict[str, Any], dict[str, Any]]:
    """``values`` split into (its MG fields among ``names``, the rest)."""
    names = set(names)
    mg = {k: v for k, v in values.items() if k in names}
    return mg, {k: v for k, v in values.items() if k not in names}


# ---- the level rule, group counts, divisibility, the uneven policy --------------------------------------
def resolve_uneven(explicit: str | None, family: str | None = None, kind: str | None = None) -> str:
    """The uneven-groups policy: the record's explicit value, else the family's default, else the step
    kind's, else ``floor``."""
    return explicit or family or kind or "floor"


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


def uneven_level(fine: list[int], group_size: int) -> int | None:
    """The first fine width wider than s_g that s_g does not divide (``None``: s_g divides every one)."""
    return next((w for w in fine if w > group_size and w % group_size), None)


def check_stage_divisibility(mg: MGParams | None, policy: str, widths: Iterable[int]) -> None:
    """With ``policy`` error, name the stage and level whose width s_g does not divide (before any expansion)."""
    if mg is None or mg.group_size is None or policy == "floor":
        return
    for stage, width in enumerate(widths, start=1):
        levels = mg_levels(width, mg.theta)
        if levels is None:
            continue
        bad = uneven_level(levels[0], mg.group_size)
        if bad is not None:
            raise SpecError(
                f"group_size {mg.group_size} does not divide the {bad} channels of stage{stage} "
                f"level{levels[0].index(bad)}; choose a group size that divides every fine width "
                f"({', '.join(map(str, levels[0]))}) or set uneven_groups: floor"
            )


# ---- per-step overrides --------------------------------------------------------------------------------
@dataclass(frozen=True)
class StepOverride:
    """One step's decision: ``base`` (``coarsest is None``: the step stays its base step) or a cycle planned
    with its own coarsest width θ. File form: ``base`` or ``{coarsest: θ}``."""

    coarsest: int | None = None

    def __post_init__(self) -> None:
        check_positive_int("coarsest", self.coarsest, optional=True, least=2)

    @property
    def base(self) -> bool:
        return self.coarsest is None

    def to_data(self) -> str | dict[str, int]:
        return "base" if self.coarsest is None else {"coarsest": self.coarsest}

    @classmethod
    def from_data(cls, step: str, data: Any) -> "StepOverride":
        if isinstance(data, StepOverride):
            return data
        if data == "base":
            return cls()
        if isinstance(data, Mapping) and set(data) == {"coarsest"}:
            return cls(coarsest=data["coarsest"])
        raise SpecError(f"step override for {step!r} must be 'base' or {{coarsest: θ}}, got {data!r}")


@dataclass(frozen=True)
class StepOverrides:
    """Per-step decisions by exact step name (``stage4.block1``), applied by the cycle pass after the user's
    selectors: a step a selector (``ignored_layers``/``min_channels``) excludes stays base whatever its
    override says. Stored in the spec (``step_overrides:``) and in the conversion record, so a network
    rebuilds from either without measuring."""

    steps: tuple[tuple[str, StepOverride], ...] = ()

    def __post_init__(self) -> None:
        names = [n for n, _ in self.steps]
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise SpecError(f"step overrides must name each step once, got {names}")

    @classmethod
    def of(cls, data: "StepOverrides | Mapping[str, Any] | None") -> "StepOverrides":
        """From the file form ``{step: base | {coarsest: θ}}`` (or a record, or ``None``: none)."""
        if data is None:
            return cls()
        if isinstance(data, StepOverrides):
            return data
        if not isinstance(data, Mapping):
            raise SpecError(f"field 'step_overrides' must map step names to base or {{coarsest: θ}}, got {data!r}")
        return cls(tuple(sorted((str(k), StepOverride.from_data(k, v)) for k, v in data.items())))

    def get(self, step: str) -> StepOverride | None:
        return next((o for n, o in self.steps if n == step), None)

    def __bool__(self) -> bool:
        return bool(self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {n: o.to_data() for n, o in self.steps}


# ---- conversion options (not MG parameters) ---------------------------------------------------------------
INITS = ("random", "base")


@dataclass(frozen=True)
class ConversionOptions:
    """What a module conversion needs besides the network-wide :class:`MGParams`.

    * ``ignored_layers``, ``min_channels``: user selectors (fnmatch patterns of step names, a width
      below which steps are kept); a step they select stays base whatever ``step_overrides`` say.
    * ``init``: ``random`` (fresh cycles) or ``base`` (each cycle starts as its base step's block-diagonal).
    * ``step_overrides``: per-step decisions by exact step name (:class:`StepOverrides`).

    Stored under ``options`` in the conversion record, with the MG record under ``multigrid``: together
    they rebuild the network without measuring (:func:`mgcompile.conversion.convert_with`).
    """

    ignored_layers: tuple[str, ...] = ()
    min_channels: int = 0
    init: str = "random"
    step_overrides: StepOverrides = StepOverrides()

    def __post_init__(self) -> None:
        object.__setattr__(self, "ignored_layers", tuple(self.ignored_layers))
        object.__setattr__(self, "step_overrides", StepOverrides.of(self.step_overrides))
        if not all(isinstance(p, str) for p in self.ignored_layers):
            raise SpecError(f"ignored_layers must be name patterns, got {self.ignored_layers!r}")
        check_positive_int("min_channels", self.min_channels, least=0)
        if self.init not in INITS:
            raise SpecError(f"init must be one of {', '.join(INITS)}, got {self.init!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"ignored_layers": list(self.ignored_layers), "min_channels": self.min_channels, "init": self.init,
                "step_overrides": self.step_overrides.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ConversionOptions":
        return cls(**data)
