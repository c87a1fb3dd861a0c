"""The MG parameters: one frozen record, its defaults and its validation, for every route.

``Spec`` (its flat YAML fields), ``mgcompile.convert``, the CLI flags and the graph
meta a saved folder holds all go through :class:`MGParams`; nothing else validates a
group size or a θ. See ``docs/levels.md`` for what each parameter means.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping

from mgcompile.errors import SpecError

CYCLES = ("multiplicative", "additive")
TRANSFERS = ("sparse", "grouped")
TRANSITIONS = ("paper", "dw_stride", "keep")
UNEVEN_GROUPS = ("error", "floor")


def _positive_int(name: str, value: Any, *, optional: bool = False, least: int = 1) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        what = "a positive integer" if least == 1 else f"an integer >= {least}"
        raise SpecError(f"field '{name}' must be {what}, got {value!r}")


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise SpecError(f"field '{name}' is {value!r}; allowed values: {', '.join(allowed)}")


@dataclass(frozen=True)
class MGParams:
    """Multigrid-in-channels parameters.

    * ``group_size`` (s_g): channels per group on fine levels.
    * ``coarsest`` (θ): widths >= θ are fine levels; the fully coupled step runs at the
      first halving below θ. Default 2·s_g.
    * ``transfer_nnz`` (t): nonzeros per row of the sparse P. Default s_g.
    * ``cycle``, ``transfer``, ``transition``: see ``docs/levels.md``.
    * ``uneven_groups``: a fine width s_g does not divide: ``error`` or ``floor``
      (``None``: the family's or step kind's default).
    * ``seed``: the init and the sparse transfers' fixed permutations.
    * ``only_profitable``: keep a step whose cycle would have as many or more parameters
      or MACs than the step (the conversion route and the newer registry families);
      ``False`` builds every cycle a spec asks for (the paper's specs) and notes the costly ones.
    """

    group_size: int
    coarsest: int | None = None
    transfer_nnz: int | None = None
    cycle: str = "multiplicative"
    transfer: str = "sparse"
    transition: str = "paper"
    uneven_groups: str | None = None
    seed: int = 0
    only_profitable: bool = False

    def __post_init__(self) -> None:
        _positive_int("group_size", self.group_size)
        _positive_int("coarsest", self.coarsest, optional=True, least=2)
        _positive_int("transfer_nnz", self.transfer_nnz, optional=True)
        _choice("cycle", self.cycle, CYCLES)
        _choice("transfer", self.transfer, TRANSFERS)
        _choice("transition", self.transition, TRANSITIONS)
        if self.uneven_groups is not None:
            _choice("uneven_groups", self.uneven_groups, UNEVEN_GROUPS)
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise SpecError(f"field 'seed' must be an integer, got {self.seed!r}")
        if not isinstance(self.only_profitable, bool):
            raise SpecError(f"field 'only_profitable' must be true or false, got {self.only_profitable!r}")

    @property
    def theta(self) -> int:
        return self.coarsest if self.coarsest is not None else 2 * self.group_size

    @property
    def nnz(self) -> int:
        return self.transfer_nnz if self.transfer_nnz is not None else self.group_size

    def uneven(self, default: str) -> str:
        return self.uneven_groups or default

    def replace(self, **changes: Any) -> "MGParams":
        return dataclasses.replace(self, **changes)

    def to_meta(self, uneven_default: str | None = None) -> dict[str, Any]:
        """The graph meta / conversion report form (resolved θ and t; stable keys)."""
        return {"group_size": self.group_size, "theta": self.theta, "cycle": self.cycle, "transfer": self.transfer,
                "nnz": self.nnz, "transition": self.transition,
                "uneven_groups": self.uneven_groups or uneven_default, "seed": self.seed,
                "only_profitable": self.only_profitable}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> "MGParams":
        """Read the graph meta form back (graphs saved before ``only_profitable`` existed read as False)."""
        return cls(group_size=meta["group_size"], coarsest=meta["theta"], transfer_nnz=meta.get("nnz"),
                   cycle=meta.get("cycle", "multiplicative"), transfer=meta.get("transfer", "sparse"),
                   transition=meta.get("transition", "paper"), uneven_groups=meta.get("uneven_groups"),
                   seed=meta.get("seed", 0), only_profitable=bool(meta.get("only_profitable", False)))
