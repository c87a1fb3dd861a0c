"""nn.Module -> IR: counts equal numel, names follow modules, unknown layers stay opaque."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from mgcompile.backends.torch_module import lower_to_torch
from mgcompile.frontends.opaque import opaque_record, rebuild_opaque_modules
from mgcompile.frontends.torch_import import import_module
from mgcompile.passes.count import count
from mgcompile.passes.pipeline import run_passes

X = torch.randn(2, 3, 32, 32)


def test_resnet18_imports_with_module_names_and_exact_count():
    model = torchvision.models.resnet18(num_classes=10)
    imp = import_module(model, X[:1])
    g = run_passes(imp.graph)
    assert count(g).params == sum(p.numel() for p in model.parameters())
    assert g.op("layer1.0.conv1") == "conv" and g.meta("layer2.0.downsample.0")["source"] == "layer2.0.downsample.0"
    assert g.op("layer1.0.relu_1") == "relu"  # the block's ReLU module is called twice
    assert not imp.opaque


def test_mobilenet_v3_unknown_ops_become_opaque_and_round_trip():
    model = torchvision.models.mobilenet_v3_small(num_classes=10).eval()
    imp = import_module(model, X[:1])
    assert "features.1.block.1" in imp.opaque  # SqueezeExcitation multiplies: kept whole
    lowered = lower_to_torch(run_passes(imp.graph), opaque=imp.opaque)
    for n in run_passes(imp.graph).nodes():
        src = imp.graph.meta(n).get("source") if n in imp.graph else None
        if src and imp.graph.op(n) in ("conv", "batchnorm", "linear"):
            lowered.get_submodule(n).load_state_dict(model.get_submodule(src).state_dict())
    lowered.eval()
    torch.testing.assert_close(lowered(X), model(X))


class _Untraceable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: fx cannot trace this
            return self.conv(x)
        return -self.conv(x)


def test_untraceable_submodule_falls_back_to_an_opaque_leaf():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), _Untraceable(), nn.ReLU()).eval()
    imp = import_module(model, X[:1])
    assert list(imp.opaque) == ["1"]
    assert any("cannot trace" in n for n in imp.notes)


def test_opaque_record_rebuilds_builtin_layers():
    rec = opaque_record(nn.Hardswish())
    assert rec == {"class": "torch.nn.modules.activation:Hardswish", "kwargs": {"inplace": False}}
    assert isinstance(rebuild_opaque_modules({"x": rec})["x"], nn.Hardswish)
