"""Training hyper-parameters: a named recipe or a YAML recipe file, CLI overrides on top.

Two named recipes (``--recipe NAME``; a name wins over a file of that name, ``./paper`` is the file):

* ``default``: adapts to the data and the batch. Batch size: the largest power of two <= the
  training images / 64, between 16 and 128 (digits: 16, fashion-mnist: 128); lr = 0.4 x
  global batch / 256 (linear scaling, Goyal et al.; 0.4 measured on digits and fashion-mnist); a linear warm-up over the first
  10% of training (at most one epoch); cosine decay to zero for runs under 30 epochs, else
  /10 at one and two thirds; each residual step's last BatchNorm scale starts at zero, so
  every step (and every MG cycle) starts as the identity.
* ``paper``: the paper's ImageNet recipe (§5): batch 128, lr 0.1 /10 every 30 epochs,
  180 epochs, no warm-up, no zero init.

Both use SGD with momentum 0.9 and weight decay 1e-4. ``None`` fields are "automatic";
:meth:`Recipe.resolve` turns them into the values a run uses (recorded in run.json,
results.json and the checkpoint, so ``--resume`` continues with exactly those).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from mgcompile.errors import MGCompileError, first_line

SCHEDULES = ("auto", "step", "cosine")
REFERENCE_BATCH = 256  # lr is given per this many images (linear scaling)


@dataclass(frozen=True)
class Recipe:
    """Momentum SGD; ``None`` fields are resolved per run by :meth:`resolve` (see the module docstring)."""

    name: str = "default"
    epochs: int = 20
    batch_size: int | None = None  # per process; None: from the data set's size
    lr: float | None = None  # None: base_lr x global batch / 256
    base_lr: float = 0.4  # per 256 images (measured: README digits example 0.98, fashion-mnist see bench-accuracy)
    momentum: float = 0.9
    weight_decay: float = 1e-4
    nesterov: bool = False
    schedule: str = "auto"  # auto: cosine under 30 epochs, else step
    step_size: int | None = None  # step schedule: epochs per /gamma; None: a third of the run
    gamma: float = 0.1
    warmup_epochs: float | None = None  # None: 10% of the run, at most one epoch
    zero_init_residual: bool = True  # each residual step's last BN scale starts at 0
    label_smoothing: float = 0.0
    val_fraction: float = 0.1
    limit_train: int | None = None  # train on a fixed subset of this many images (quick runs)
    seed: int = 0
    workers: int | None = None  # None: 8 on CUDA, 0 on CPU
    amp: bool = True  # bf16 autocast on CUDA where supported
    channels_last: bool = True
    compile: bool = False
    checkpointing: bool = False
    teacher: str | None = None  # distillation: a trained run folder, or torchvision:/timm:/module: + teacher_weights
    teacher_weights: str | None = None
    distill_temperature: float = 4.0
    distill_weight: float = 0.5  # share of the distillation term in the loss

    def __post_init__(self) -> None:
        for f in fields(self):
            _check_type(f.name, getattr(self, f.name), _TYPES[f.name])
        if self.schedule not in SCHEDULES:
            raise MGCompileError(f"recipe field 'schedule' is {self.schedule!r}; allowed values: {', '.join(SCHEDULES)}")
        for name in ("epochs", "batch_size", "step_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise MGCompileError(f"recipe field '{name}' must be a positive integer, got {value!r}")
        if not 0 <= self.val_fraction < 1:
            raise MGCompileError(f"recipe field 'val_fraction' must be in [0, 1), got {self.val_fraction!r}")
        for name in ("lr", "base_lr"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise MGCompileError(f"recipe field '{name}' must be a positive number, got {value!r}")
        if not (self.distill_temperature > 0 and 0 <= self.distill_weight <= 1):
            raise MGCompileError("recipe fields 'distill_temperature' (> 0) and 'distill_weight' (in [0, 1]) are out of "
                                 f"range: got {self.distill_temperature!r} and {self.distill_weight!r}")
        if self.warmup_epochs is not None and not (0 <= self.warmup_epochs <= self.epochs):
            raise MGCompileError(f"recipe field 'warmup_epochs' must be in [0, epochs], got {self.warmup_epochs!r}")
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

    @property
    def resolved(self) -> bool:
        return None not in (self.batch_size, self.lr, self.step_size, self.warmup_epochs) and self.schedule != "auto"

    def resolve(self, train_images: int, world_size: int = 1) -> "Recipe":
        """The concrete recipe of a run on ``train_images`` images over ``world_size`` processes."""
        batch = self.batch_size
        if batch is None:
            batch = 16
            while batch * 2 <= min(128, train_images // 64):
                batch *= 2
        lr = self.lr if self.lr is not None else self.base_lr * batch * world_size / REFERENCE_BATCH
        schedule = self.schedule if self.schedule != "auto" else ("cosine" if self.epochs < 30 else "step")
        step_size = self.step_size if self.step_size is not None else max(1, self.epochs // 3)
        warmup = self.warmup_epochs if self.warmup_epochs is not None else min(1.0, 0.1 * self.epochs)
        return dataclasses.replace(self, batch_size=batch, lr=float(lr), schedule=schedule, step_size=step_size,
                                   warmup_epochs=float(warmup))

    def lr_factor(self, step: int, steps_per_epoch: int) -> float:
        """The lr multiplier after ``step`` optimizer steps (linear warm-up, then cosine or step decay)."""
        total = self.epochs * steps_per_epoch
        warmup = int(round((self.warmup_epochs or 0.0) * steps_per_epoch))
        if step < warmup:
            return (step + 1) / warmup
        if self.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))
        return self.gamma ** ((step // steps_per_epoch) // (self.step_size or self.epochs))


_TYPES: dict[str, tuple[type, ...]] = {
    "name": (str,), "epochs": (int,), "batch_size": (int, type(None)), "step_size": (int, type(None)), "seed": (int,),
    "limit_train": (int, type(None)), "workers": (int, type(None)), "lr": (float, int, type(None)),
    "base_lr": (float, int), "momentum": (float, int), "weight_decay": (float, int), "gamma": (float, int),
    "label_smoothing": (float, int), "val_fraction": (float, int), "schedule": (str,),
    "warmup_epochs": (float, int, type(None)), "zero_init_residual": (bool,),
    "nesterov": (bool,), "amp": (bool,), "channels_last": (bool,), "compile": (bool,), "checkpointing": (bool,),
    "teacher": (str, type(None)), "teacher_weights": (str, type(None)), "distill_temperature": (float, int),
    "distill_weight": (float, int),
}
_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


def _check_type(name: str, value: Any, allowed: tuple[type, ...]) -> None:
    """bool is not a number here, and a number is not a bool: ``momentum: fast`` or ``amp: 1`` are one-line errors."""
    ok = isinstance(value, allowed) and (isinstance(value, bool) == (bool in allowed) or value is None)
    if not ok:
        raise MGCompileError(f"recipe field '{name}' must be {_NAMES[allowed[0]]}, got {value!r}")


RECIPES: dict[str, Recipe] = {
    "default": Recipe(),
    "paper": Recipe(name="paper", epochs=180, batch_size=128, lr=0.1, schedule="step", step_size=30,
                    warmup_epochs=0.0, zero_init_residual=False),
}


def load_recipe(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """A named recipe (``default``, ``paper``) or the defaults then a YAML file's keys; then the CLI's (``None`` =
    not given). A name wins over a file of that name; ``./paper`` is the file."""
    if path is not None and str(path) in RECIPES:
        return RECIPES[str(path)].replace(**(overrides or {}))
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise MGCompileError(f"recipe file {p} does not exist; pass a recipe name ({', '.join(RECIPES)}) or a "
                                 "YAML file with keys like epochs, lr, schedule")
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
