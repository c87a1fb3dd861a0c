"""torch.distributed plumbing: process group from torchrun's environment, DDP, sampler, buffer sync.

Launch with ``torchrun --nproc_per_node=N $(which mgcompile) train ...``: every process
trains on its shard (``--batch-size`` is per process), rank 0 logs, evaluates and
checkpoints. NCCL on GPU, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DistributedSampler

from mgcompile.errors import MGCompileError


@dataclass(frozen=True)
class Context:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1 or dist.is_initialized()

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def setup(requested: bool, device_type: str) -> Context:
    """Join the process group when run under torchrun (or fail clearly when --distributed has no launcher)."""
    if not launched_by_torchrun():
        if requested:
            raise MGCompileError("--distributed needs a launcher: run `torchrun --nproc_per_node=N $(which mgcompile) train ...`")
        return Context()
    ctx = Context(int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ.get("LOCAL_RANK", 0)))
    if not dist.is_initialized():
        backend = "nccl" if device_type == "cuda" else "gloo"
        if device_type == "cuda":
            torch.cuda.set_device(ctx.local_rank)
        dist.init_process_group(backend=backend)
    return ctx


def teardown(ctx: Context) -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: nn.Module, ctx: Context, device: torch.device) -> nn.Module:
    if not ctx.enabled:
        return model
    ids = [device.index if device.index is not None else ctx.local_rank] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(model, device_ids=ids)


class ResumableSampler(DistributedSampler):
    """DistributedSampler that can start part way into an epoch (``skip`` samples of this rank already seen)."""

    def __init__(self, size: int, ctx: Context, seed: int, shuffle: bool = True) -> None:
        super().__init__(range(size), num_replicas=ctx.world_size, rank=ctx.rank, shuffle=shuffle, seed=seed)
        self.skip = 0

    def __iter__(self):
        return iter(list(super().__iter__())[self.skip:])

    def __len__(self) -> int:
        return self.num_samples - self.skip


def any_rank(flags: tuple[bool, ...], ctx: Context, device: torch.device) -> tuple[bool, ...]:
    """Each flag true on every rank when it is true on any (so all ranks stop at the same batch)."""
    if not ctx.enabled:
        return flags
    t = torch.tensor([1.0 if f else 0.0 for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return tuple(bool(v > 0) for v in t.tolist())


@torch.no_grad()
def sync_buffers(model: nn.Module, ctx: Context) -> None:
    """Average floating buffers (BN running statistics) across ranks; broadcast the rest from rank 0."""
    if not ctx.enabled:
        return
    for buf in model.buffers():
        if buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf.div_(ctx.world_size)
        else:
            dist.broadcast(buf, src=0)


def barrier(ctx: Context) -> None:
    if ctx.enabled:
        dist.barrier()


def state_digest(model: nn.Module) -> str:
    """SHA-256 over every parameter and buffer (sorted by name): equal digests = bitwise-equal models."""
    import hashlib

    h = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def gather_digests(model: nn.Module, ctx: Context) -> list[str]:
    """Every rank's :func:`state_digest`; a run whose ranks ended apart is an error, not a silent result."""
    mine = state_digest(model)
    if not ctx.enabled:
        return [mine]
    digests: list[str] = [""] * ctx.world_size
    dist.all_gather_object(digests, mine)
    if len(set(digests)) != 1:
        raise MGCompileError(f"DDP ranks ended with different weights ({len(set(digests))} distinct); report this as a bug")
    return digests


def sum_across(values: tuple[float, ...], ctx: Context, device: torch.device) -> tuple[float, ...]:
    """Sum per-rank counters (images seen, loss sum, correct) over all ranks."""
    if not ctx.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return tuple(t.tolist())
