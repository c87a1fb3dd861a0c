"""The mobilenet_v2 spec frontend is torchvision's MobileNetV2 at every width multiplier."""

from __future__ import annotations

import pytest
import torchvision

import mgcompile
from mgcompile.passes.count import count


@pytest.mark.parametrize("width_mult", [1.0, 1.4])
def test_base_counts_equal_torchvision(width_mult):
    spec = mgcompile.model_spec("mobilenet_v2", width_mult=width_mult)
    tv = torchvision.models.mobilenet_v2(width_mult=width_mult)
    assert count(mgcompile.expand(spec)).params == sum(p.numel() for p in tv.parameters())


def test_built_module_runs_at_reduced_size():
    spec = mgcompile.model_spec("mobilenet_v2", num_classes=10, input_size=(32, 32))
    model = mgcompile.build(spec)
    import torch

    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert sum(p.numel() for p in model.parameters()) == count(model.mg_graph).params
