"""A training run end to end: model for the data, resume, epochs, checkpoints, signals, results.

``RUN_DIR`` gets run.json (what was asked, and how inputs were normalised), checkpoint.pt
(after every epoch and on SIGINT/SIGTERM), metrics.csv/.jsonl, and at the end results.json
and model.pt (the trained network, readable by ``mgcompile eval/export RUN_DIR``).
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import torch
from torch import nn

from mgcompile.atomic import atomic_write_json
from mgcompile.errors import MGCompileError
from mgcompile.ir.ops import opdef
from mgcompile.ir.roles import Role
from mgcompile.progress import Progress
from mgcompile.provenance import claim_folder
from mgcompile.train import TRAIN_FILES
from mgcompile.train import distributed as D
from mgcompile.train.calibration_data import split_normalisation
from mgcompile.train.checkpoint import (CHECKPOINT_FILE, capture_rng, check_same_network, read_checkpoint,
                                        restore_rng, save_checkpoint)
from mgcompile.train.data import Source, Splits, load_source, make_splits
from mgcompile.train.loop import (EpochState, NonFiniteLoss, Precision, evaluate, flush_denormals, make_loader,
                                  pick_device, pick_precision, train_epoch)
from mgcompile.train.metrics import write_metrics
from mgcompile.train.recipe import Recipe, load_recipe

if TYPE_CHECKING:
    from mgcompile.refs import Resolved

FAULTS = ("TERM", "INT", "KILL", "NAN")


class Stopped(Exception):
    """The run stopped on a signal after writing a checkpoint; exit with 128 + signum."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


@dataclass(frozen=True)
class Fault:
    """A debug fault injected after global batch ``after`` (tests: real signals at a deterministic point)."""

    kind: str
    after: int

    @classmethod
    def parse(cls, text: str) -> "Fault":
        kind, _, n = text.partition("@")
        if kind.upper() not in FAULTS or not n.isdigit() or int(n) < 1:
            raise MGCompileError(f"--debug-fault takes KIND@N with KIND in {', '.join(FAULTS)}, e.g. TERM@5; got {text!r}")
        return cls(kind.upper(), int(n))


def model_for_data(ref: str, source: Source, overrides: dict[str, Any]) -> "Resolved":
    """Resolve REF with its stem and head adapted to the data (channels, classes, native size)."""
    from mgcompile.refs import is_saved_model, resolve

    given = {k: v for k, v in overrides.items() if v is not None}
    for key, value in (("in_channels", source.channels), ("num_classes", source.num_classes)):
        if key in given and given[key] != value:
            raise MGCompileError(f"{source.name} has {value} {key.replace('_', ' ')} but the options ask for {given[key]}; drop the option")
    if is_saved_model(ref):
        resolved = resolve(ref, **given)
        check_fits(resolved.graph, source, ref)
        return resolved
    adapted = {"in_channels": source.channels, "num_classes": source.num_classes}
    if source.native_size is not None:
        adapted["input_size"] = source.native_size
    return resolve(ref, **{**adapted, **given})


def check_fits(graph, source: Source, where: str) -> None:
    """A saved network must take the data set's channels and predict its classes (one line naming both)."""
    channels = graph.input_shape()[0]
    (out,) = graph.nodes("output")
    classes = graph.shape(out)[0]
    if (channels, classes) != (source.channels, source.num_classes):
        raise MGCompileError(
            f"{where} takes {channels} input channel(s) and predicts {classes} classes, but {source.name} has "
            f"{source.channels} and {source.num_classes}; convert again with --input-size {source.channels},H,W "
            f"--num-classes {source.num_classes}, or pick the data set it was made for"
        )


def input_size_of(resolved: "Resolved") -> tuple[int, int]:
    """(H, W) the model was built for; images are resized to it."""
    return tuple(resolved.graph.input_shape()[1:])


def default_run_dir(resolved: "Resolved", data: str) -> Path:
    from mgcompile.naming import model_name

    return Path("runs") / f"{model_name(resolved)}-{data.replace(':', '_').replace('/', '_')}"


class _SignalFlag:
    """SIGINT/SIGTERM only set a flag; the loop checks it between batches and checkpoints before exiting."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_SignalFlag":
        if threading.current_thread() is threading.main_thread():  # Python only delivers signals there
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def train(ref: str, data: str, *, recipe_file: str | None = None, recipe_overrides: dict[str, Any] | None = None,
          data_dir: str | None = None, out: str | None = None, device: str = "auto", resume: bool = False,
          distributed: bool = False, overrides: dict[str, Any] | None = None, plot: bool = False,
          fault: Fault | None = None, log: Callable[[str], None] = print) -> dict[str, Any]:
    """Train REF on DATA; returns the results (also written to RUN_DIR/results.json)."""
    dev = pick_device(device)
    flush_denormals(dev)
    ctx = D.setup(distributed, dev.type)
    if ctx.enabled and dev.type == "cuda":
        dev = torch.device("cuda", ctx.local_rank)
    try:
        return _train(ref, data, recipe_file, recipe_overrides or {}, data_dir, out, dev, resume, ctx,
                      overrides or {}, plot, fault, log if ctx.is_main else (lambda msg: None))
    finally:
        D.teardown(ctx)


@dataclass(frozen=True)
class RunConfig:
    """What one training run was asked to do and where it writes (``_train`` fills it from ``train``'s arguments)."""

    resolved: "Resolved"
    source: Source
    data: str
    data_dir: str | None
    recipe_file: str | None
    recipe_overrides: dict[str, Any]
    run_dir: Path
    dev: torch.device
    resume: bool
    ctx: D.Context
    spec_dict: dict[str, Any] | None
    graph_dict: dict[str, Any]
    plot: bool
    fault: Fault | None
    log: Callable[[str], None]

    @property
    def ckpt_path(self) -> Path:
        return self.run_dir / CHECKPOINT_FILE


def _train(ref, data, recipe_file, recipe_overrides, data_dir, out, dev, resume, ctx, overrides, plot, fault, log):
    source = load_source(data, data_dir)
    resolved = model_for_data(ref, source, overrides)
    spec_dict = resolved.spec.to_dict() if resolved.spec is not None else None
    graph_dict = resolved.graph.to_dict()
    # a resumed run replaces its checkpoint, which read_checkpoint vets (and refuses if corrupt or foreign)
    owned = tuple(n for n in TRAIN_FILES if not (resume and n == CHECKPOINT_FILE))
    run_dir = claim_folder(Path(out) if out else default_run_dir(resolved, data), owned)
    created = not run_dir.exists()
    before = {n for n in TRAIN_FILES if (run_dir / n).exists()}
    saved: dict[str, Any] = {"epoch": None}
    cfg = RunConfig(resolved, source, data, data_dir, recipe_file, recipe_overrides, run_dir, dev, resume, ctx,
                    spec_dict, graph_dict, plot, fault, log)
    try:
        return _run(cfg, saved)
    except BaseException:
        if not resume and saved["epoch"] is None and ctx.is_main:
            _remove_unfinished(run_dir, created, before)
        raise


def _remove_unfinished(run_dir: Path, created: bool, before: set[str]) -> None:
    """A run that failed before its first checkpoint leaves nothing behind: the files it created are removed."""
    for name in TRAIN_FILES:
        if name not in before:
            (run_dir / name).unlink(missing_ok=True)
    if created:
        try:
            run_dir.rmdir()
        except OSError:
            pass


@dataclass
class _Training:
    """What a run trains with: built by :func:`_setup`, advanced by the epochs, restored from a checkpoint."""

    recipe: Recipe
    size: tuple[int, int]
    splits: Splits
    precision: Precision
    model: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    loss_fn: Callable
    steps_per_epoch: int
    zeroed: int
    train_model: nn.Module | None = None
    params: int = 0
    start_epoch: int = 0
    state: EpochState = field(default_factory=EpochState)
    history: list[dict[str, Any]] = field(default_factory=list)
    rng: Any = None
    batches: int = 0  # optimizer steps taken in this process (the debug fault counts them)


def _run(cfg: RunConfig, saved: dict[str, Any]) -> dict[str, Any]:
    """Recipe, model, resume, the epochs, the results; ``saved["epoch"]`` follows the checkpoint on disk."""
    recipe, ckpt = _recipe_and_checkpoint(cfg)
    t = _setup(cfg, recipe, ckpt)
    _restore(cfg, t, ckpt)
    t.train_model = _training_module(cfg, t)
    _announce(cfg, t)
    if ckpt is not None:
        saved["epoch"] = t.start_epoch
    checkpoint = _checkpointer(cfg, t, saved)
    sampler = D.ResumableSampler(len(t.splits.train), cfg.ctx, seed=t.recipe.seed)
    with _SignalFlag() as flag:
        for epoch in range(t.start_epoch, t.recipe.epochs):
            _epoch(cfg, t, epoch, sampler, flag, checkpoint, saved)
    return _finish(cfg, t)


def _recipe_and_checkpoint(cfg: RunConfig) -> tuple[Recipe, dict[str, Any] | None]:
    """The run's recipe, and the checkpoint it resumes from (``None`` for a new run)."""
    ckpt_path, recipe_overrides = cfg.ckpt_path, cfg.recipe_overrides
    if not cfg.resume:
        if ckpt_path.exists():
            raise MGCompileError(f"{cfg.run_dir} already holds a run ({CHECKPOINT_FILE}); continue it with --resume "
                                 "or pick a new --out")
        return load_recipe(cfg.recipe_file, recipe_overrides), None
    ckpt = read_checkpoint(ckpt_path)
    check_same_network(ckpt, cfg.spec_dict, cfg.graph_dict, str(ckpt_path))
    if "warmup_epochs" not in ckpt["recipe"]:
        raise MGCompileError(f"{ckpt_path} was written by an older mgcompile whose schedules stepped per epoch; "
                             "it cannot be resumed exactly: start a new run (--out elsewhere)")
    base = Recipe(**ckpt["recipe"]) if cfg.recipe_file is None else load_recipe(cfg.recipe_file)
    fixed = [k for k in ("lr", "batch_size", "schedule", "base_lr", "step_size", "warmup_epochs")
             if recipe_overrides.get(k) is not None and recipe_overrides[k] != ckpt["recipe"].get(k)]
    if fixed:
        raise MGCompileError(f"--resume continues the run's schedule; {', '.join(fixed)} cannot change mid-run "
                             "(only --epochs can): start a new run with --out elsewhere to change them")
    return base.replace(**recipe_overrides), ckpt


def _setup(cfg: RunConfig, recipe: Recipe, ckpt: dict[str, Any] | None) -> _Training:
    """Data splits, the model on its device, optimizer, schedule, loss scaler and loss (distilled or not)."""
    resolved, dev, ctx = cfg.resolved, cfg.dev, cfg.ctx
    size = input_size_of(resolved)
    splits = make_splits(cfg.source, size, val_fraction=recipe.val_fraction, seed=recipe.seed,
                         limit_train=recipe.limit_train)
    recipe = recipe.resolve(len(splits.train), ctx.world_size)
    precision = pick_precision(dev, recipe.amp)
    model = resolved.model().to(dev)
    zeroed = 0
    if recipe.zero_init_residual and ckpt is None and resolved.fresh_cycles:
        zeroed = zero_init_residual(model, resolved.graph)
    if recipe.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                                weight_decay=recipe.weight_decay, nesterov=recipe.nesterov)
    steps_per_epoch = math.ceil(D.ResumableSampler(len(splits.train), ctx, seed=recipe.seed).num_samples
                                / recipe.batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: recipe.lr_factor(step, steps_per_epoch))
    scaler = torch.amp.GradScaler(dev.type, enabled=precision.dtype == torch.float16)
    return _Training(recipe, size, splits, precision, model, optimizer, scheduler, scaler, _loss(cfg, recipe),
                     steps_per_epoch, zeroed)


def _loss(cfg: RunConfig, recipe: Recipe) -> Callable:
    """The training criterion: label-smoothed cross entropy, distilled from ``recipe.teacher`` when it names one."""
    teacher = None
    if recipe.teacher is not None:
        from mgcompile.train.distill import check_teacher, load_teacher

        teacher = load_teacher(recipe.teacher, recipe.teacher_weights, cfg.source.num_classes, cfg.resolved.graph)
        check_teacher(teacher, tuple(cfg.resolved.graph.input_shape()), cfg.source.num_classes, recipe.teacher)
        teacher = teacher.to(cfg.dev)
        if recipe.channels_last:
            teacher = teacher.to(memory_format=torch.channels_last)
    from mgcompile.train.distill import criterion as make_criterion

    return make_criterion(recipe.label_smoothing, teacher, recipe.distill_temperature, recipe.distill_weight)


def _restore(cfg: RunConfig, t: _Training, ckpt: dict[str, Any] | None) -> None:
    """Resume: the checkpoint's states, epoch, history and RNG; a new run seeds torch from the recipe."""
    if ckpt is None:
        torch.manual_seed(t.recipe.seed)
        return
    t.model.load_state_dict(ckpt["model"])
    t.optimizer.load_state_dict(ckpt["optimizer"])
    t.scheduler.load_state_dict(ckpt["scheduler"])
    t.scaler.load_state_dict(ckpt["scaler"])
    t.start_epoch, t.state, t.history, t.rng = (ckpt["epoch"], EpochState(**ckpt["epoch_state"]),
                                                list(ckpt["history"]), ckpt["rng"])
    cfg.log(f"resuming {cfg.ckpt_path}: epoch {t.start_epoch + 1}, {t.state.batches} batches done")


def _training_module(cfg: RunConfig, t: _Training) -> nn.Module:
    """What the loop calls: the model, activation-checkpointed, DDP-wrapped and compiled as the recipe asks."""
    train_model: nn.Module = t.model
    if t.recipe.checkpointing:  # shares the model's parameters and buffers: training it trains `model`
        from mgcompile.train.activation_checkpointing import checkpoint_stages

        train_model = checkpoint_stages(t.model)
    train_model = D.wrap(train_model, cfg.ctx, cfg.dev)
    if t.recipe.compile:
        train_model = torch.compile(train_model)
    return train_model


def _announce(cfg: RunConfig, t: _Training) -> None:
    """run.json (what was asked, and the input normalisation calibration reads back), then the run's one-line
    summary and its recipe's."""
    recipe, ctx, dev, size, splits = t.recipe, cfg.ctx, cfg.dev, t.size, t.splits
    if ctx.is_main:
        info = {"ref": cfg.resolved.ref, "data": cfg.data, "data_dir": cfg.data_dir, "input_size": list(size),
                "spec": cfg.spec_dict, "recipe": recipe.to_dict(),
                "normalize": split_normalisation(cfg.source, splits).to_dict(), "world_size": ctx.world_size,
                "device": str(dev), "precision": str(t.precision.dtype or "float32"), "argv": sys.argv}
        atomic_write_json(cfg.run_dir / "run.json", info)
    t.params = sum(p.numel() for p in t.model.parameters())
    resolved = cfg.resolved
    cfg.log(f"{resolved.spec.name if resolved.spec else resolved.ref}: {t.params:,} params, {cfg.source.name} at "
            f"{size[0]}x{size[1]}, {len(splits.train)} train / {len(splits.val) if splits.val else 0} val / "
            f"{len(splits.test)} test, device {dev}, {ctx.world_size} process(es), run dir {cfg.run_dir}")
    cfg.log(f"recipe {recipe.name}: {recipe.epochs} epochs, batch {recipe.batch_size} x {ctx.world_size}, lr "
            f"{recipe.lr:.4g} ({recipe.schedule}, warm-up {recipe.warmup_epochs:g} epochs), momentum "
            f"{recipe.momentum:g}, weight decay {recipe.weight_decay:g}"
            + (f", distilled from {recipe.teacher} (T {recipe.distill_temperature:g}, weight "
               f"{recipe.distill_weight:g})" if recipe.teacher else "")
            + (f", {t.zeroed} fresh residual steps and MG corrections start as identities" if t.zeroed else ""))


def _checkpointer(cfg: RunConfig, t: _Training, saved: dict[str, Any]) -> Callable[[int, EpochState], None]:
    """``checkpoint(epoch, state)``: checkpoint.pt and the metrics files (main process), then a barrier."""
    ctx = cfg.ctx

    def checkpoint(epoch: int, st: EpochState) -> None:
        if ctx.is_main:
            save_checkpoint(cfg.ckpt_path, {
                "spec": cfg.spec_dict, "graph": cfg.graph_dict, "model": t.model.state_dict(),
                "optimizer": t.optimizer.state_dict(), "scheduler": t.scheduler.state_dict(),
                "scaler": t.scaler.state_dict(), "rng": capture_rng(), "epoch": epoch, "epoch_state": st.to_dict(),
                "history": t.history, "recipe": t.recipe.to_dict(), "data": cfg.data, "world_size": ctx.world_size,
            })
        saved["epoch"] = epoch  # only once it is on disk: a failed first save leaves nothing behind
        if ctx.is_main:
            write_metrics(cfg.run_dir, t.history)
        D.barrier(ctx)

    return checkpoint


def _hooks(cfg: RunConfig, t: _Training, flag: _SignalFlag) -> tuple[Callable, Callable, Callable]:
    """``train_epoch``'s hooks: stop on a signal (any rank's), agree on a non-finite loss, step the schedule
    (and inject the debug fault)."""
    ctx, dev, fault = cfg.ctx, cfg.dev, cfg.fault

    def should_stop() -> bool:
        (stop,) = D.any_rank((flag.signum is not None,), ctx, dev)
        if stop and flag.signum is None:
            flag.signum = signal.SIGTERM  # another rank was signalled
        return stop

    def any_nonfinite(bad: bool) -> bool:
        return D.any_rank((bad,), ctx, dev)[0]

    def after_step(st: EpochState) -> None:
        t.scheduler.step()  # per optimizer step: warm-up and decay are smooth even in runs of a few epochs
        t.batches += 1
        if fault is not None and t.batches == fault.after:
            if fault.kind == "NAN":
                with torch.no_grad():
                    next(t.model.parameters()).fill_(float("nan"))
            else:
                os.kill(os.getpid(), getattr(signal, f"SIG{fault.kind}"))

    return should_stop, any_nonfinite, after_step


def _stopped(cfg: RunConfig, flag: _SignalFlag, epoch: int, st: EpochState) -> Stopped:
    name = signal.Signals(flag.signum).name
    return Stopped(flag.signum, f"stopped by {name} in epoch {epoch + 1} after {st.batches} batches; "
                                f"checkpoint {cfg.ckpt_path} written; continue with --resume")


def _epoch(cfg: RunConfig, t: _Training, epoch: int, sampler: D.ResumableSampler, flag: _SignalFlag,
           checkpoint: Callable[[int, EpochState], None], saved: dict[str, Any]) -> None:
    """One epoch from ``t.state``'s point on: train, validate, record, checkpoint; raises Stopped on a signal."""
    recipe, ctx, dev = t.recipe, cfg.ctx, cfg.dev
    sampler.set_epoch(epoch)
    sampler.skip = t.state.batches * recipe.batch_size
    t.splits.train.epoch = epoch
    loader = make_loader(t.splits.train, recipe.batch_size, dev, recipe.workers, sampler, recipe.seed + epoch)
    batches = iter(loader)
    if t.rng is not None:
        restore_rng(t.rng)
        t.rng = None
    progress = Progress(math.ceil(sampler.num_samples / recipe.batch_size), f"epoch {epoch + 1}/{recipe.epochs}",
                        "batches", initial=t.state.batches) if ctx.is_main else None
    lr = recipe.lr * recipe.lr_factor(epoch * t.steps_per_epoch, t.steps_per_epoch)  # at the epoch's start
    try:
        early = train_epoch(t.train_model, batches, t.optimizer, t.scaler, dev, t.precision, recipe.channels_last,
                            t.state, *_hooks(cfg, t, flag), recipe.label_smoothing, progress, criterion=t.loss_fn)
    except NonFiniteLoss as exc:
        kept = (f"the last good checkpoint {cfg.ckpt_path} (epoch {saved['epoch']}) is kept"
                if saved["epoch"] is not None else "no checkpoint was written")
        raise MGCompileError(f"loss became {exc} in epoch {epoch + 1} at batch {t.state.batches + 1}; "
                             f"stopped, {kept}; lower --lr and start a new run") from None
    finally:
        if progress is not None:
            progress.close()
    if early:
        checkpoint(epoch, t.state)
        raise _stopped(cfg, flag, epoch, t.state)
    row = _epoch_row(cfg, t, epoch, lr)
    t.history.append(row)
    t.state = EpochState()
    checkpoint(epoch + 1, t.state)
    cfg.log(_format_row(row, recipe.epochs))
    if flag.signum is not None:
        raise _stopped(cfg, flag, epoch + 1, t.state)


def _epoch_row(cfg: RunConfig, t: _Training, epoch: int, lr: float) -> dict[str, Any]:
    """The epoch's metrics row: training loss and top-1 summed over ranks, validation on the main process."""
    D.sync_buffers(t.model, cfg.ctx)
    seen, loss_sum, correct = D.sum_across((t.state.seen, t.state.loss_sum, t.state.correct), cfg.ctx, cfg.dev)
    row: dict[str, Any] = {"epoch": epoch + 1, "lr": lr, "train_loss": loss_sum / max(seen, 1),
                           "train_top1": correct / max(seen, 1),
                           "images_per_s": seen / max(t.state.seconds, 1e-9), "epoch_s": t.state.seconds}
    if cfg.ctx.is_main and t.splits.val is not None:
        val = evaluate(t.model, _eval_loader(cfg, t, t.splits.val), cfg.dev, t.precision, t.recipe.channels_last)
        row.update(val_loss=val["loss"], val_top1=val["top1"], val_top5=val["top5"])
    return row


def _eval_loader(cfg: RunConfig, t: _Training, dataset: Any) -> Any:
    return make_loader(dataset, t.recipe.batch_size, cfg.dev, t.recipe.workers)


def _finish(cfg: RunConfig, t: _Training) -> dict[str, Any]:
    """Test accuracy, model.pt and results.json (and curves.png with ``plot``) of the finished run."""
    ctx, dev, run_dir, recipe, history = cfg.ctx, cfg.dev, cfg.run_dir, t.recipe, t.history
    digests = D.gather_digests(t.model, ctx)
    results: dict[str, Any] = {"rank_digests": digests, "data": cfg.data, "epochs": len(history), "params": t.params,
                               "world_size": ctx.world_size, "device": str(dev), "run_dir": str(run_dir),
                               "recipe": recipe.to_dict()}
    if ctx.is_main:
        test = evaluate(t.model, _eval_loader(cfg, t, t.splits.test), dev, t.precision, recipe.channels_last)
        results.update(test_top1=test["top1"], test_top5=test["top5"], test_loss=test["loss"], test_n=test["n"],
                       images_per_s=history[-1]["images_per_s"] if history else None)
        from mgcompile.api import save

        save(t.model.to(memory_format=torch.contiguous_format).cpu(), run_dir, trained=True)
        atomic_write_json(run_dir / "results.json", results)
        if cfg.plot:
            from mgcompile.train.report import plot_curves

            plot_curves(history, run_dir / "curves.png", title=f"{run_dir.name}")
        cfg.log(f"test top-1 {test['top1']:.4f}  top-5 {test['top5']:.4f}  ({test['n']} images); wrote {run_dir}/model.pt")
    D.barrier(ctx)
    return results


@torch.no_grad()
def zero_init_residual(model: nn.Module, graph: Any) -> int:
    """Zero the scale of each residual step's last BatchNorm (the BN that ends the step's body), so every step --
    and every level of an MG cycle -- starts as the identity (Goyal et al. 2017); returns how many were zeroed.

    In an MG cycle the BN after P is zeroed too: with identity steps the correction P(y - R z) is nearly zero,
    and a BN in training mode scales it back to unit variance, amplifying noise ~1e6-fold into gradients
    (measured: gradient norm 6e8 at the first step of mg_cifar_resnet_g8c16 on digits). With it zeroed the
    whole cycle starts as the identity and its gradients are those of a plain ResNet's."""
    n = 0
    for add in graph.nodes(role=Role.RESIDUAL_SUM):  # the sums expand_steps writes (a converted module's kept steps
        node = graph.inputs(add)[1]                   # are no macros, so their sums play no role and stay)
        while opdef(graph.op(node)).zero_init_through:
            node = graph.inputs(node)[0]
        if graph.op(node) == "batchnorm":
            model.get_submodule(node).weight.zero_()
            n += 1
    for node in graph.nodes(role=Role.CORRECTION_BN):  # an MG cycle's corrections: BN(P(y - R z)), see above
        model.get_submodule(node).weight.zero_()
        n += 1
    return n


def _format_row(row: dict[str, Any], epochs: int) -> str:
    text = (f"epoch {row['epoch']}/{epochs}  lr {row['lr']:.4g}  train loss {row['train_loss']:.4f} "
            f"top-1 {row['train_top1']:.4f}")
    if "val_top1" in row:
        text += f"  val loss {row['val_loss']:.4f} top-1 {row['val_top1']:.4f}"
    return text + f"  {row['images_per_s']:.0f} img/s"
