"""Label-free calibration: fit a converted MG network to the network it was converted from.

A conversion keeps the original's shape, stem, head and kept steps, but every MG cycle
starts afresh (or, with ``--init base``, as its step with the cross-group couplings cut).
Calibration teaches each cycle its step back from the original itself, on images alone:

* **The teacher** is the original's own IR (``meta_graph.base_graph``, saved with every
  conversion), lowered with the original module's weights; it is checked to reproduce the
  module. Its step inputs and outputs are found by role (``step_input``/``step_output``),
  the same roles the MG graph carries, so step S of one is step S of the other -- a
  transition is the strided step it replaces, compared at that step's output.
* **Local phase** (teacher-forced): every fitted step reads the *original's* input to that
  step and is fitted to the original step's output, all steps in one forward pass. Errors
  do not compound while the cycles are still far off.
* **Global phase**: the network runs on its own; each step's output is pulled towards the
  original's, and the logits towards the original's (KL divergence).
* A step's error is ``mean((y_mg - y_orig)^2) / mean(y_orig^2)``; the loss is the mean
  over fitted steps (plus the KL in the global phase). Adam, one cosine schedule over the
  whole budget; the budget counts *image presentations* (one forward of the original plus
  one forward and backward of the MG network each). Finally every BatchNorm's running
  statistics are re-estimated over the calibration images with the weights frozen.

Labels are never read: the image source yields images only (a ``(x, y)`` batch is cut to
``x`` before anything else sees it). ``docs/calibration.md`` has the measurements behind
the choices.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any, Iterable, Iterator

import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from mgcompile.errors import MGCompileError
from mgcompile.ir.graph import Graph
from mgcompile.ir.roles import Role
from mgcompile.progress import Progress, logger, stage

FITTED = ("converted", "transition")  # the conversion statuses whose layers are new: the steps calibration fits


@dataclass(frozen=True)
class CalibrationConfig:
    """How long and how a calibration runs (defaults: the measured method, ``docs/calibration.md``)."""

    presentations: int = 20_000  # images shown, whatever the data set's size (small sets are cycled)
    batch_size: int = 128
    lr: float = 3e-3
    local_fraction: float = 0.6  # the teacher-forced share of the budget
    kl_weight: float = 1.0
    seed: int = 0
    device: str = "cpu"
    heldout_images: int = 5_000  # at most this many held-out images score the result
    bn_images: int = 4_096  # at most this many of the images presented re-estimate BatchNorm statistics

    @property
    def steps(self) -> int:
        return max(1, math.ceil(self.presentations / self.batch_size))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def fitted_steps(graph: Graph) -> list[str]:
    """The steps a calibration fits: converted cycles and transitions, in network order."""
    rows = (graph.meta_graph.conversion or {}).get("blocks", [])
    return [r["block"] for r in rows if r.get("status") in FITTED]


# ---- the teacher: the original, as its IR, with taps ---------------------------------------------------------

def teacher_of(mg_model: nn.Module, original: nn.Module) -> fx.GraphModule:
    """The original network as the lowered IR it was converted from (``base_graph``), with the original's weights.

    A module that is not the one this network was converted from (another architecture, other weights) is a
    one-line error: its import does not reproduce the base graph, or its outputs differ.
    """
    from mgcompile.backends.torch_module import lower_to_torch
    from mgcompile.frontends.torch_import import copy_weights, fingerprint, import_module

    graph: Graph = mg_model.mg_graph  # type: ignore[attr-defined]
    stored = graph.meta_graph.base_graph
    if not stored or not graph.meta_graph.conversion:
        raise MGCompileError("this network was not converted from a module (it has no conversion record); calibration "
                             "fits a converted network to its original: convert a trained network first")
    base = Graph.from_dict(stored)
    example = torch.zeros(1, *base.input_shape())
    imported = import_module(original, example)
    if set(imported.graph.nodes()) - set(base.nodes()):
        raise MGCompileError("the original given is not the network this one was converted from (its layers differ); "
                             "pass the module or run that was converted")
    teacher = lower_to_torch(base, opaque=imported.opaque)
    try:
        copy_weights(base, imported.module, teacher)
    except MGCompileError as exc:
        raise MGCompileError(f"the original given is not the network this one was converted from ({exc})") from None
    teacher.eval()
    recorded = graph.meta_graph.conversion.get("fingerprint")
    if recorded is not None:  # the same weights as at conversion (conversions before it recorded none)
        got = torch.tensor(fingerprint(teacher, tuple(base.input_shape())))
        want = torch.tensor(recorded)
        if got.shape != want.shape or not torch.allclose(got, want, rtol=1e-3, atol=1e-4 * float(want[-1]) + 1e-6):
            raise MGCompileError("the original given does not reproduce the network this one was converted from "
                                 "(other weights); pass the module or run that was converted")
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


def _boundary(graph: Graph, role: Role, step: str) -> str:
    nodes = graph.nodes(role=role, step=step)
    if len(nodes) != 1:
        raise MGCompileError(f"step {step}: expected one {role.value} node in the graph, found {len(nodes)}")
    return nodes[0]


def tapped(gm: fx.GraphModule, graph: Graph, taps: list[str], forced: list[str] = ()) -> fx.GraphModule:
    """``gm`` returning ``(logits, [value of IR node t for t in taps])``, sharing ``gm``'s parameters.

    ``forced`` IR nodes become extra inputs, in that order: every use of such a node reads the input instead
    (teacher forcing: a step fed the original's input to it). Their own values are still tapped unforced.
    """
    values = _values(gm, graph)
    g = fx.Graph()
    env: dict[fx.Node, fx.Node] = {}
    out = g.graph_copy(gm.graph, env)
    by_name = {n.name: env[n] for n in gm.graph.nodes if n in env}
    first = next(n for n in g.nodes if n.op != "placeholder")
    for name in forced:
        node = by_name[values[name]]
        with g.inserting_before(first):
            p = g.placeholder(f"forced_{values[name]}")
        for user in list(node.users):
            user.replace_input_with(node, p)
    g.output((out, [by_name[values[t]] for t in taps]))
    g.lint()
    return fx.GraphModule(gm, g, class_name="Tapped")


def _values(gm: fx.GraphModule, graph: Graph) -> dict[str, str]:
    """IR node -> fx node name: recorded at lowering (``mg_values``), else found again (a copied module loses it)."""
    if hasattr(gm, "mg_values"):
        return gm.mg_values  # type: ignore[return-value]
    by_target = {n.target: n.name for n in gm.graph.nodes if n.op == "call_module"}
    names = {n.name for n in gm.graph.nodes}
    return {n: by_target.get(n, n.replace(".", "_")) for n in graph.nodes()
            if n in by_target or n.replace(".", "_") in names}


# ---- image batches ---------------------------------------------------------------------------------------------

def _images(batch: Any) -> torch.Tensor:
    """The image part of a batch: a tensor, or the first element of an ``(x, y)`` pair (``y`` is never touched)."""
    if isinstance(batch, (tuple, list)):
        batch = batch[0]
    if not isinstance(batch, torch.Tensor) or batch.dim() != 4:
        raise MGCompileError(f"calibration images must be batches of (N, C, H, W) tensors, got "
                             f"{tuple(batch.shape) if isinstance(batch, torch.Tensor) else type(batch).__name__}")
    return batch


def batches(images: Any, batch_size: int, seed: int) -> Iterator[torch.Tensor]:
    """An endless stream of image batches: a tensor or a Dataset shuffled per pass (seeded), any other iterable of
    batches re-iterated as it is (a DataLoader, a list). Small sets are cycled."""
    gen = torch.Generator().manual_seed(seed)
    if isinstance(images, torch.Tensor):
        if images.dim() != 4 or len(images) == 0:
            raise MGCompileError(f"calibration images must be an (N, C, H, W) tensor, got {tuple(images.shape)}")
        while True:
            order = torch.randperm(len(images), generator=gen)
            for i in range(0, len(order), batch_size):
                yield images[order[i:i + batch_size]]
    if isinstance(images, torch.utils.data.Dataset) and hasattr(images, "__len__"):
        epoch = 0
        while True:
            if hasattr(images, "epoch"):
                images.epoch = epoch  # a fresh augmentation per pass (calibration_data.CalibrationSet)
            loader = torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=True, generator=gen,
                                                 collate_fn=_stack)
            yield from loader
            epoch += 1
    if not isinstance(images, Iterable):
        raise MGCompileError(f"calibration images must be a tensor, a Dataset or an iterable of batches, "
                             f"not {type(images).__name__}")
    while True:
        empty = True
        for b in images:
            empty = False
            yield _images(b)
        if empty:
            raise MGCompileError("the calibration images are empty (the iterable yielded no batch)")


def _stack(items: list[Any]) -> torch.Tensor:
    """A Dataset's items as one batch: an item is an image, or an ``(image, label)`` pair whose label is dropped."""
    return torch.stack([i[0] if isinstance(i, (tuple, list)) else i for i in items])


def _fixed(images: Any, limit: int, batch_size: int) -> list[torch.Tensor]:
    """Up to ``limit`` images as a list of batches, in their order (held-out scoring, BN statistics)."""
    if images is None:
        return []
    out, n = [], 0
    source: Iterable[torch.Tensor]
    if isinstance(images, torch.Tensor):
        source = iter(images[i:i + batch_size] for i in range(0, len(images), batch_size))
    elif isinstance(images, torch.utils.data.Dataset) and hasattr(images, "__len__"):
        source = iter(torch.utils.data.DataLoader(images, batch_size=batch_size, shuffle=False, collate_fn=_stack))
    else:
        source = (_images(b) for b in images)
    for b in source:
        b = b[:limit - n]
        out.append(b)
        n += len(b)
        if n >= limit:
            break
    return out


# ---- the fit -------------------------------------------------------------------------------------------------

def _nmse(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return (y - t).pow(2).mean() / t.pow(2).mean().clamp_min(1e-12)


def _kl(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    return F.kl_div(F.log_softmax(student.float(), 1), F.log_softmax(teacher.float(), 1), log_target=True,
                    reduction="batchmean")


class _Pair:
    """The teacher and the student, tapped at every fitted step's input and output."""

    def __init__(self, mg_model: nn.Module, teacher: fx.GraphModule, steps: list[str]) -> None:
        graph: Graph = mg_model.mg_graph  # type: ignore[attr-defined]
        base = Graph.from_dict(graph.meta_graph.base_graph)
        self.steps = steps
        t_in = [_boundary(base, Role.STEP_INPUT, s) for s in steps]
        t_out = [_boundary(base, Role.STEP_OUTPUT, s) for s in steps]
        s_in = [_boundary(graph, Role.STEP_INPUT, s) for s in steps]
        s_out = [_boundary(graph, Role.STEP_OUTPUT, s) for s in steps]
        self.teacher = tapped(teacher, base, t_in + t_out)
        self.student = tapped(mg_model, graph, s_out)  # type: ignore[arg-type]
        self.forced_order = list(dict.fromkeys(s_in))
        self.forced = tapped(mg_model, graph, s_out, forced=self.forced_order)  # type: ignore[arg-type]
        self.s_in = s_in

    @torch.no_grad()
    def targets(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        logits, taps = self.teacher(x)
        n = len(self.steps)
        return logits, taps[:n], taps[n:]

    def forced_inputs(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        by_node = dict(zip(self.s_in, inputs))
        return [by_node[n] for n in self.forced_order]


def calibrate(mg_model: nn.Module, original: nn.Module, images: Any, *, heldout: Any = None,
              config: CalibrationConfig | None = None, teacher: fx.GraphModule | None = None,
              **options: Any) -> dict[str, Any]:
    """Fit ``mg_model`` (a converted network, changed in place) to ``original`` on ``images``; returns the report.

    ``images``: an (N, C, H, W) tensor, a Dataset of images, or any iterable of image batches (a DataLoader; a
    ``(x, y)`` batch is cut to ``x``), normalised as ``original`` expects. ``heldout``: the same kind, images kept out
    of the fit that score it (per-step errors, top-1 agreement and KL before and after); ``None`` scores nothing.
    The model ends in eval mode with re-estimated BatchNorm statistics. See the module docstring for the method.
    ``options`` are :class:`CalibrationConfig` fields (``presentations=5000``, ``batch_size``, ``seed``, ``device``).
    """
    cfg = config or CalibrationConfig()
    if options:
        unknown = sorted(set(options) - set(cfg.to_dict()))
        if unknown:
            raise MGCompileError(f"calibrate() got unknown options {', '.join(unknown)}; it takes "
                                 f"{', '.join(cfg.to_dict())}")
        cfg = CalibrationConfig(**{**cfg.to_dict(), **options})
    steps = fitted_steps(mg_model.mg_graph)  # type: ignore[attr-defined]
    if not steps:
        raise MGCompileError("this network has no converted step to calibrate (no MG cycle or transition)")
    dev = torch.device(cfg.device)
    teacher = teacher if teacher is not None else teacher_of(mg_model, original)
    pair = _Pair(mg_model, teacher.to(dev), steps)
    mg_model.to(dev)
    scored = [b.to(dev) for b in _fixed(heldout, cfg.heldout_images, cfg.batch_size)]
    report: dict[str, Any] = {"method": "teacher-forced local phase, then global phase (step outputs + logits KL)",
                              "config": cfg.to_dict(), "fitted_steps": len(steps)}
    before = score(pair, scored) if scored else None
    logger.info(f"fitting {len(steps)} converted steps to the original: {cfg.steps} steps of {cfg.batch_size} images, "
                f"{round(cfg.steps * cfg.local_fraction)} of them teacher-forced")
    start = time.perf_counter()
    history = _fit(pair, mg_model, batches(images, cfg.batch_size, cfg.seed), cfg, dev)
    with stage("re-estimating BatchNorm statistics over the calibration images"):
        seen = recompute_batchnorm(mg_model, batches(images, cfg.batch_size, cfg.seed + 1),
                                   min(cfg.bn_images, cfg.steps * cfg.batch_size), dev)
    report.update(seconds=round(time.perf_counter() - start, 1), bn_images=seen, history=history)
    conversion = mg_model.mg_graph.meta_graph.conversion  # type: ignore[attr-defined]
    conversion["calibration"] = report  # saved with the model: audits show it
    mg_model.eval()
    if scored:
        after = score(pair, scored)
        report["heldout"] = {"images": sum(len(b) for b in scored), "agreement_before": before["agreement"],
                             "agreement": after["agreement"], "kl_before": before["kl"], "kl": after["kl"]}
        report["steps"] = [{"step": s, "status": _status(mg_model, s), "error_before": b, "error": a,
                            "local_error_before": lb, "local_error": lo}
                           for s, b, a, lb, lo in zip(steps, before["errors"], after["errors"], before["local"],
                                                      after["local"])]
    return report


def _status(mg_model: nn.Module, step: str) -> str:
    rows = mg_model.mg_graph.meta_graph.conversion.get("blocks", [])  # type: ignore[attr-defined]
    return next(r["status"] for r in rows if r["block"] == step)


def _fit(pair: _Pair, model: nn.Module, stream: Iterator[torch.Tensor], cfg: CalibrationConfig,
         dev: torch.device) -> list[dict[str, float]]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=cfg.lr)
    total, local_steps = cfg.steps, round(cfg.steps * cfg.local_fraction)
    model.train()
    pair.student.train()
    pair.forced.train()
    history: list[dict[str, float]] = []
    torch.manual_seed(cfg.seed)  # dropout / drop-path inside the student
    with Progress(total, "calibrating", unit="step") as bar:
        for step in range(total):
            x = next(stream).to(dev, non_blocking=True)
            for group in opt.param_groups:
                group["lr"] = cfg.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            t_logits, t_in, t_out = pair.targets(x)
            if step < local_steps:
                _, ys = pair.forced(x, *pair.forced_inputs(t_in))
                loss = torch.stack([_nmse(y, t) for y, t in zip(ys, t_out)]).mean()
                kl = torch.zeros(())
            else:
                logits, ys = pair.student(x)
                kl = _kl(logits, t_logits)
                loss = torch.stack([_nmse(y, t) for y, t in zip(ys, t_out)]).mean() + cfg.kl_weight * kl
            if not torch.isfinite(loss):
                raise MGCompileError(f"calibration diverged at step {step + 1} (loss {loss.item()}); "
                                     "lower --calibrate-lr or check that the images are normalised as the original expects")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if step % 10 == 0 or step == total - 1:
                history.append({"step": step + 1, "phase": "local" if step < local_steps else "global",
                                "loss": round(loss.item(), 6), "kl": round(kl.item(), 6)})
            bar.update(1, loss=f"{loss.item():.4f}")
    return history


@torch.no_grad()
def recompute_batchnorm(model: nn.Module, stream: Iterator[torch.Tensor], limit: int, dev: torch.device) -> int:
    """Re-estimate every BatchNorm's running mean and variance over up to ``limit`` images, weights frozen.

    Running statistics become the exact average over the images shown (momentum ``None``), so eval-mode output
    then normalises with the statistics of those images. Returns how many images were shown.
    """
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [(m.momentum, m.training) for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.eval()
    for m in bns:
        m.train()
    seen = 0
    try:
        while seen < limit:
            x = next(stream)[: limit - seen].to(dev)
            model(x)
            seen += len(x)
    finally:
        for m, (momentum, _) in zip(bns, saved):
            m.momentum = momentum
        model.eval()
    return seen


@torch.no_grad()
def score(pair: _Pair, scored: list[torch.Tensor]) -> dict[str, Any]:
    """Eval-mode agreement, KL and per-step errors (end to end, and teacher-forced) on the held-out batches."""
    was = pair.student.training
    pair.student.eval()
    pair.forced.eval()
    agree = kl = 0.0
    n = 0
    errs = torch.zeros(len(pair.steps), dtype=torch.float64)
    local = torch.zeros(len(pair.steps), dtype=torch.float64)
    norm = torch.zeros(len(pair.steps), dtype=torch.float64)
    for x in scored:
        t_logits, t_in, t_out = pair.targets(x)
        logits, ys = pair.student(x)
        _, forced = pair.forced(x, *pair.forced_inputs(t_in))
        agree += (logits.argmax(1) == t_logits.argmax(1)).sum().item()
        kl += _kl(logits, t_logits).item() * len(x)
        n += len(x)
        for i, (y, f, t) in enumerate(zip(ys, forced, t_out)):
            errs[i] += (y - t).double().pow(2).sum()
            local[i] += (f - t).double().pow(2).sum()
            norm[i] += t.double().pow(2).sum()
    pair.student.train(was)
    norm = norm.clamp_min(1e-30)
    return {"agreement": round(agree / n, 5), "kl": round(kl / n, 5),
            "errors": [round(v, 5) for v in (errs / norm).tolist()],
            "local": [round(v, 5) for v in (local / norm).tolist()]}
