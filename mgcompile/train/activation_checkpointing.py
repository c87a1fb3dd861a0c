"""Activation checkpointing per stage, for wide networks (the paper uses it for its widest MG models).

The model is a ``torch.fx.GraphModule`` whose module paths are IR names
(``stage2.block1...``), so splitting its graph at stage boundaries is exact: each
stage becomes a submodule whose activations are recomputed in the backward pass. The
split shares the original modules (parameters and BN buffers), so training the split
trains the model that is saved.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch.fx as fx
from torch import nn
from torch.fx.passes.split_module import split_module
from torch.utils.checkpoint import checkpoint


@contextlib.contextmanager
def _frozen_batchnorm_statistics(module: nn.Module) -> Iterator[None]:
    """During the recomputation, BN normalises as before but leaves its running statistics alone."""
    saved = [(bn, bn.momentum, bn.num_batches_tracked.clone() if bn.num_batches_tracked is not None else None)
             for bn in module.modules() if isinstance(bn, nn.modules.batchnorm._BatchNorm)]
    for bn, _, _ in saved:
        bn.momentum = 0.0
    try:
        yield
    finally:
        for bn, momentum, tracked in saved:
            bn.momentum = momentum
            if tracked is not None:
                bn.num_batches_tracked.copy_(tracked)


class Recompute(nn.Module):
    """Run ``inner`` without keeping its activations; recompute them for backward (BN statistics updated once)."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        if not self.training:
            return self.inner(*args)
        return checkpoint(self.inner, *args, use_reentrant=False,
                          context_fn=lambda: (contextlib.nullcontext(), _frozen_batchnorm_statistics(self.inner)))


def _stage(node: fx.Node) -> int:
    name = str(node.target) if node.op == "call_module" else node.name
    head = name.split(".")[0].split("_")[0]
    return int(head[5:]) if head.startswith("stage") and head[5:].isdigit() else -1


def checkpoint_stages(model: fx.GraphModule) -> nn.Module:
    """A module computing ``model`` with each stage's activations recomputed in backward."""
    current = {"stage": 0}

    def partition(node: fx.Node) -> int:
        stage = _stage(node)
        if stage > current["stage"]:
            current["stage"] = stage
        return current["stage"]

    split = split_module(model, model, partition)
    for name, child in list(split.named_children()):
        if name.startswith("submod_") and any(True for _ in child.parameters()):
            setattr(split, name, Recompute(child))
    return split
