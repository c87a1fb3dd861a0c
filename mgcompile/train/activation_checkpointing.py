"""Activation checkpointing per stage, for wide networks (the paper uses it for its widest MG models).

The model is a ``torch.fx.GraphModule`` whose module paths are IR names
(``stage2.block1...``), so splitting its graph at stage boundaries is exact: each
stage becomes a submodule whose activations are recomputed in the backward pass. The
split shares the original modules (parameters and BN buffers), so training the split
trains the model that is saved.
"""

from __future__ import annotations

import torch.fx as fx
from torch import nn
from torch.fx.passes.split_module import split_module
from torch.utils.checkpoint import checkpoint


class Recompute(nn.Module):
    """Run ``inner`` without keeping its activations; recompute them for backward."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, *args):
        if not self.training:
            return self.inner(*args)
        return checkpoint(self.inner, *args, use_reentrant=False)


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
