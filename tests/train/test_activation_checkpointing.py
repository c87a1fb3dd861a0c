"""Per-stage activation checkpointing: same outputs, gradients and BN statistics, on the same parameters."""

from __future__ import annotations

import torch

import mgcompile
from mgcompile.train.activation_checkpointing import Recompute, checkpoint_stages


def test_same_outputs_and_gradients_shared_parameters():
    spec = mgcompile.model_spec("cifar_resnet", channels=(16, 32), blocks=(1, 1), input_size=(16, 16),
                                group_size=8, coarsest=16)
    model = mgcompile.build(spec)
    split = checkpoint_stages(model)
    assert sum(isinstance(m, Recompute) for m in split.children()) >= 2
    assert {id(p) for p in split.parameters()} == {id(p) for p in model.parameters()}
    x = torch.randn(4, 3, 16, 16)
    model.train()
    start = {k: v.clone() for k, v in model.state_dict().items()}
    expected = model(x)
    expected.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    buffers = {n: b.clone() for n, b in model.named_buffers()}
    model.load_state_dict(start)
    model.zero_grad()
    got = split(x)
    got.square().sum().backward()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[n], rtol=1e-5, atol=1e-6)
    for n, b in model.named_buffers():  # BN statistics updated once, not again by the recomputation
        torch.testing.assert_close(b, buffers[n], rtol=0, atol=1e-6)
