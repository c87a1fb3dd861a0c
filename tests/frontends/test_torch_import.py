"""nn.Module -> IR: counts equal numel, names follow modules, unknown layers stay opaque."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from mgcompile.backends.torch_module import lower_to_torch
from mgcompile.backends.opaque import opaque_record, rebuild_opaque_modules
from mgcompile.frontends.torch_import import check_import, copy_weights, import_module
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


def _round_trip(model: nn.Module, x: torch.Tensor):
    """Import, lower with the copied weights, and compare with the original (what check_import asserts)."""
    imp = import_module(model, x[:1])
    lowered = lower_to_torch(run_passes(imp.graph), opaque=imp.opaque)
    copy_weights(imp.graph, imp.module, lowered)
    torch.testing.assert_close(lowered.eval()(x), model.eval()(x), rtol=1e-4, atol=1e-5)
    return imp


def test_mobilenet_v3_squeeze_excitation_and_hardswish_are_ir_ops():
    imp = _round_trip(torchvision.models.mobilenet_v3_small(num_classes=10), X)
    g = imp.graph
    assert not imp.opaque and not imp.notes
    assert g.op("features.1.block.1") == "squeeze_excite"  # torchvision's SqueezeExcitation, fused by dataflow
    assert g.attrs("features.1.block.1") == {"channels": 16, "squeeze": 8, "activation": "relu", "gate": "hardsigmoid"}
    assert g.meta("features.1.block.1")["weights"]["fc1.weight"] == "features.1.block.1.fc1.weight"
    assert g.op("features.1.block.0.2") == "relu" and g.op("features.4.block.0.2") == "hardswish"


def test_convnext_channels_last_block_becomes_layernorm_and_1x1_convs():
    model = torchvision.models.convnext_tiny(num_classes=10)
    imp = _round_trip(model, torch.randn(2, 3, 64, 64))
    g = imp.graph
    assert g.op("features.1.0.block.2") == "layernorm" and g.op("features.1.0.block.3") == "conv"
    assert g.attrs("features.1.0.block.3")["kernel"] == 1 and g.attrs("features.1.0.block.3")["bias"]
    assert g.op("features.1.0.layer_scale") == "layer_scale"  # a direct parameter use, named after it
    assert "features.1.0.stochastic_depth" not in g  # rate 0: an identity
    assert g.op("features.7.2.stochastic_depth") == "drop_path" and g.attrs("features.7.2.stochastic_depth")["p"] > 0.09
    assert not imp.opaque


def test_drop_path_is_kept_not_traced_away_in_eval_mode():
    model = torchvision.models.efficientnet_b0(num_classes=10, stochastic_depth_prob=0.2)
    g = _round_trip(model, X).graph
    rates = [g.attrs(n)["p"] for n in g.nodes("drop_path")]
    assert len(rates) == 9 and max(rates) > 0.1  # StochasticDepth in row mode, its rate kept per block


class _Cumulative(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cumsum(x, dim=1)  # no IR op


def test_a_call_no_rule_models_keeps_its_module_opaque_with_a_note():
    model = nn.Sequential(nn.Conv2d(3, 8, 1), _Cumulative(), nn.ReLU()).eval()
    imp = _round_trip(model, X)
    assert list(imp.opaque) == ["1"] and imp.graph.meta("1")["class"] == "_Cumulative"
    assert imp.notes == ["1: kept as an opaque layer (_Cumulative uses torch.cumsum)"]


def test_the_import_check_catches_a_misread_layer(monkeypatch):
    from mgcompile.errors import InternalError

    model = torchvision.models.resnet18(num_classes=10)
    imp = import_module(model, X[:1])
    check_import(imp, X[:1])
    relu = next(n for n in imp.graph.nodes("relu"))
    imp.graph.nx.nodes[relu]["op"] = "sigmoid"  # what a wrong rule would produce
    with pytest.raises(InternalError, match="differs from the module"):
        check_import(imp, X[:1])


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
