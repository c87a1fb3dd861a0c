"""Training hyper-parameters: the paper's defaults, a YAML recipe file, CLI overrides on top."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from mgcompile.errors import MGCompileError, first_line

SCHEDULES = ("step", "cosine")


@dataclass(frozen=True)
class Recipe:
    """Paper §5: momentum SGD 0.9, weight decay 1e-4, lr 0.1 divided by 10 every 30 epochs (or cosine)."""

    epochs: int = 180
    batch_size: int = 128  # per process
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "step"
    step_size: int = 30
    gamma: float = 0.1
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    limit_train: int | None = None  # train on a fixed subset of this many images (quick runs)
    seed: int = 0
    workers: int | None = None  # None: 8 on CUDA, 0 on CPU
    amp: bool = True  # bf16 autocast on CUDA where supported
    channels_last: bool = True
    compile: bool = False
    checkpointing: bool = False

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), _TYPES[f.name])
        if self.schedule not in SCHEDULES:
            raise MGCompileError(f"recipe field 'schedule' is {self.schedule!r}; allowed values: {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "step_size"):
            if getattr(self, name) < 1:
                raise MGCompileError(f"recipe field '{name}' must be a positive integer, got {getattr(self, name)!r}")
        if not 0 <= self.val_fraction < 1:
            raise MGCompileError(f"recipe field 'val_fraction' must be in [0, 1), got {self.val_fraction!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise MGCompileError(f"recipe field 'lr' must be a positive number, got {self.lr!r}")
        for name, lo, hi in (("momentum", 0.0, 1.0), ("label_smoothing", 0.0, 1.0)):
            if not lo <= getattr(self, name) < hi:
                raise MGCompileError(f"recipe field '{name}' must be in [{lo:g}, {hi:g}), got {getattr(self, name)!r}")
        if self.weight_decay < 0 or self.gamma <= 0:
            raise MGCompileError("recipe fields 'weight_decay' (>= 0) and 'gamma' (> 0) are out of range: "
                                 f"got {self.weight_decay!r} and {self.gamma!r}")
        for name in ("limit_train", "workers"):
            value = getattr(self, name)
            if value is not None and value < (1 if name == "limit_train" else 0):
                raise MGCompileError(f"recipe field '{name}' must be a {'positive' if name == 'limit_train' else 'non-negative'} "
                                     f"integer, got {value!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def replace(self, **changes: Any) -> "Recipe":
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})


_TYPES: dict[str, tuple[type, ...]] = {
    "epochs": (int,), "batch_size": (int,), "step_size": (int,), "seed": (int,), "limit_train": (int, type(None)),
    "workers": (int, type(None)), "lr": (float, int), "momentum": (float, int), "weight_decay": (float, int),
    "gamma": (float, int), "label_smoothing": (float, int), "val_fraction": (float, int), "schedule": (str,),
    "nesterov": (bool,), "amp": (bool,), "channels_last": (bool,), "compile": (bool,), "checkpointing": (bool,),
}
_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_type(name: str, value: Any, allowed: tuple[type, ...]) -> None:
    """bool is not a number here, and a number is not a bool: ``momentum: fast`` or ``amp: 1`` are one-line errors."""
    ok = isinstance(value, allowed) and (isinstance(value, bool) == (bool in allowed) or value is None)
    if not ok:
        raise MGCompileError(f"recipe field '{name}' must be {_NAMES[allowed[0]]}, got {value!r}")


def load_recipe(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Defaults, then the YAML file's keys, then the CLI's (``None`` = not given)."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise MGCompileError(f"recipe file {p} does not exist; pass a YAML file with keys like epochs, lr, schedule")
        try:
            loaded = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise MGCompileError(f"recipe file {p} is not valid YAML ({first_line(exc)}); fix its syntax") from None
        if not isinstance(loaded, dict):
            raise MGCompileError(f"recipe file {p} must be a mapping of key: value")
        known = {f.name for f in fields(Recipe)}
        unknown = sorted(set(loaded) - known)
        if unknown:
            raise MGCompileError(f"recipe file {p}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(known))}")
        for key, value in loaded.items():  # YAML 1.1 reads `lr: 1e-3` (no dot) as a string
            if isinstance(value, str) and float in _TYPES[key]:
                try:
                    loaded[key] = float(value)
                except ValueError:
                    pass
        data.update(loaded)
    try:
        recipe = Recipe(**data)
    except TypeError as exc:
        raise MGCompileError(f"recipe: {exc}") from None
    return recipe.replace(**(overrides or {}))
