"""One training epoch and one evaluation pass; the same code on CPU and CUDA.

On CUDA: bf16 autocast where supported (fp16 + grad scaler otherwise), channels_last,
pinned-memory loaders with workers. On CPU autocast is off and everything else is the
same path. The epoch can stop after any batch (signal, debug stop, non-finite loss);
its running sums live in :class:`EpochState` so a checkpoint can continue it exactly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, Sampler


@dataclass
class EpochState:
    """Running sums of the current epoch (checkpointed with it)."""

    batches: int = 0
    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Precision:
    """Autocast settings for a device."""

    device_type: str
    dtype: torch.dtype | None  # None: full precision

    @property
    def enabled(self) -> bool:
        return self.dtype is not None

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype or torch.float32, enabled=self.enabled)


def pick_device(name: str) -> torch.device:
    """``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``; anything else is a one-line error."""
    from mgcompile.errors import MGCompileError

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        device = None
    if device is None or device.type not in ("cpu", "cuda"):
        raise MGCompileError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MGCompileError(f"--device {name} was asked for but no CUDA device is available; use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MGCompileError(f"--device {name}: this machine has {torch.cuda.device_count()} CUDA device(s); "
                                 f"use cuda:0..cuda:{torch.cuda.device_count() - 1}")
    return device


def flush_denormals(device: torch.device) -> None:
    """On CPU, flush denormal floats to zero: tiny gradients and BN statistics otherwise make steps 20-80x slower."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def pick_precision(device: torch.device, amp: bool) -> Precision:
    """bf16 on CUDA where supported, fp16 (with a grad scaler) on older GPUs, full precision on CPU."""
    if device.type != "cuda" or not amp:
        return Precision(device.type, None)
    return Precision("cuda", torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)


def make_loader(dataset: Dataset, batch_size: int, device: torch.device, workers: int | None,
                sampler: Sampler | None = None, seed: int = 0) -> DataLoader:
    """Pinned memory and worker processes on CUDA; a private generator so the global RNG is never touched."""
    if workers is None:
        workers = 8 if device.type == "cuda" else 0
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=workers,
                      pin_memory=device.type == "cuda", persistent_workers=False,
                      generator=torch.Generator().manual_seed(seed))


def to_device(x: torch.Tensor, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = x.to(device, non_blocking=True)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class NonFiniteLoss(RuntimeError):
    """The loss became NaN or infinite; the step was not applied."""


def train_epoch(model: nn.Module, batches: Iterable, optimizer: torch.optim.Optimizer, scaler: torch.amp.GradScaler,
                device: torch.device, precision: Precision, channels_last: bool, state: EpochState,
                should_stop: Callable[[], bool], any_nonfinite: Callable[[bool], bool],
                after_step: Callable[[EpochState], None], label_smoothing: float = 0.0, progress=None,
                criterion: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None = None) -> bool:
    """Train over ``batches`` from ``state``'s point on; returns True when stopped early.

    ``should_stop()`` runs before each forward pass (BN statistics of a batch that is not
    trained on are never recorded) and ``any_nonfinite(flag)`` after it; both run on every
    rank, which is where ranks agree. A non-finite loss raises :class:`NonFiniteLoss`
    before its step is applied. ``criterion(logits, x, y)`` is the loss (default:
    cross-entropy; :mod:`mgcompile.train.distill` adds a teacher's).
    """
    model.train()
    start = time.perf_counter()
    for x, y in batches:
        if should_stop():
            return True
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
        with precision.autocast():
            logits = model(x)
            if criterion is not None:
                loss = criterion(logits, x, y)
            else:
                loss = F.cross_entropy(logits.float(), y, label_smoothing=label_smoothing)
        if any_nonfinite(not bool(torch.isfinite(loss).item())):
            raise NonFiniteLoss(str(loss.item()))
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        state.batches += 1
        state.seen += int(y.numel())
        state.loss_sum += float(loss.item()) * int(y.numel())
        state.correct += int((logits.argmax(1) == y).sum().item())
        now = time.perf_counter()
        state.seconds, start = state.seconds + now - start, now
        if progress is not None:
            progress.update(1, loss=f"{state.loss_sum / state.seen:.3f}", acc=f"{state.correct / state.seen:.3f}",
                            img_s=f"{state.seen / max(state.seconds, 1e-9):.0f}")
        after_step(state)
    return False


@torch.no_grad()
def evaluate(model: nn.Module, loader: DataLoader, device: torch.device, precision: Precision,
             channels_last: bool) -> dict[str, float]:
    """Mean loss, top-1 and top-5 accuracy over ``loader``."""
    model.eval()
    n, loss_sum, top1, top5 = 0, 0.0, 0, 0
    for x, y in loader:
        x, y = to_device(x, device, channels_last), y.to(device, non_blocking=True)
        with precision.autocast():
            logits = model(x).float()
        loss_sum += float(F.cross_entropy(logits, y, reduction="sum").item())
        k = min(5, logits.shape[1])
        best = logits.topk(k, dim=1).indices
        top1 += int((best[:, 0] == y).sum().item())
        top5 += int((best == y[:, None]).any(dim=1).sum().item())
        n += int(y.numel())
    return {"loss": loss_sum / max(n, 1), "top1": top1 / max(n, 1), "top5": top5 / max(n, 1), "n": n}
