"""Residual steps are found by dataflow in torchvision and hand-written modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision

from mgcompile.passes.residual_steps import find_sums
from mgcompile.frontends.torch_import import import_module

_spec = importlib.util.spec_from_file_location("user_nets", Path(__file__).parents[1] / "frontends" / "user_nets.py")
user_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(user_nets)
X = torch.randn(1, 3, 32, 32)


def find_blocks(graph):
    return [s.step for s in find_sums(graph) if s.step is not None]


def _blocks(model):
    return [(b.name, b.kind, b.in_channels, b.out_channels, b.stride) for b in find_blocks(import_module(model, X).graph)]


def test_resnet18_blocks_named_after_modules():
    blocks = _blocks(torchvision.models.resnet18(num_classes=10))
    assert [b[0] for b in blocks] == [f"layer{s}.{i}" for s in range(1, 5) for i in range(2)]
    assert blocks[2] == ("layer2.0", "basic", 64, 128, 2)
    assert all(b[1] == "basic" for b in blocks)


def test_resnext_bottlenecks_keep_their_cardinality():
    found = find_blocks(import_module(torchvision.models.resnext50_32x4d(num_classes=10), X).graph)
    assert len(found) == 16 and {b.kind for b in found} == {"bottleneck"}
    conv2 = next(n for n in found[1].attrs["body"] if n["name"] == "conv2")["attrs"]
    assert conv2["groups"] == 32 and conv2["in_channels"] == 128 and found[1].constant_width
    assert "layer1.0.downsample.0" in found[0].replaced


def test_mobilenet_v2_only_blocks_with_a_shortcut():
    blocks = _blocks(torchvision.models.mobilenet_v2(num_classes=10))
    # torchvision's layout has 10 inverted residuals with an identity shortcut (24,32x2,64x3,96x2,160x2).
    assert [b[2] for b in blocks] == [24, 32, 32, 64, 64, 64, 96, 96, 160, 160]
    assert blocks[0][:2] == ("features.3", "inverted")


@pytest.mark.parametrize("make,expected", [
    (lambda: user_nets.FunctionalNet(), [("blocks.0", "basic"), ("blocks.1", "basic")]),
    (lambda: user_nets.SequentialNet(), [("features.3", "basic"), ("features.4", "basic")]),
    (lambda: user_nets.BottleneckNet(), [("bottleneck", None)]),
])
def test_user_styles_match_structurally(make, expected):
    blocks = _blocks(make())
    assert len(blocks) == len(expected)
    for got, (name, kind) in zip(blocks, expected):
        if kind is None:
            assert got[1] == "bottleneck"
        else:
            assert got[:2] == (name, kind)


def test_no_blocks_in_a_plain_net():
    assert _blocks(user_nets.PlainNet()) == []


class _PreActBlock(torch.nn.Module):
    """ResNet v2: the projection reads the activated input, so bn0 + relu0 belong to the step."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        nn = torch.nn
        self.bn0, self.relu0 = nn.BatchNorm2d(cin), nn.ReLU()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(cout), nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.proj = nn.Conv2d(cin, cout, 1, stride, bias=False) if (cin != cout or stride != 1) else None

    def forward(self, x):
        a = self.relu0(self.bn0(x))
        short = self.proj(a) if self.proj is not None else x
        return short + self.conv2(self.relu1(self.bn1(self.conv1(a))))


class _PreActNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1, bias=False)
        self.blocks = torch.nn.Sequential(_PreActBlock(16, 16, 1), _PreActBlock(16, 32, 2), _PreActBlock(32, 32, 1))
        self.head = torch.nn.Linear(32, 10)

    def forward(self, x):
        return self.head(self.blocks(self.stem(x)).mean((2, 3)))


def test_pre_activation_steps_are_found_whole_and_named_by_kind():
    blocks = find_blocks(import_module(_PreActNet(), X).graph)
    assert [(b.name, b.kind, b.in_channels, b.out_channels, b.stride) for b in blocks] == [
        ("blocks.0", "basic", 16, 16, 1), ("blocks.1", "basic", 16, 32, 2), ("blocks.2", "basic", 32, 32, 1)]
    assert blocks[1].attrs["params"]["activation"] == "pre" and "blocks.1.bn0" in blocks[1].replaced
    assert blocks[1].attrs["shortcut"][0]["inputs"] == ["relu0"]  # the projection reads the activated input


def test_a_post_activation_stem_is_not_taken_into_the_first_step():
    """RegNet's first block projects the stem's ReLU output: structurally like a pre-activation input."""
    steps = find_blocks(import_module(torchvision.models.regnet_x_400mf(num_classes=10), X).graph)
    assert steps[0].name == "trunk_output.block1.block1-0" and not any(s.startswith("stem") for s in steps[0].replaced)


class _TwoBranches(torch.nn.Module):
    """A sum of two 3x3 branches (no identity, no projection) and a residual step around an opaque layer."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.stem = nn.Conv2d(3, 16, 3, padding=1)
        self.a, self.b = nn.Conv2d(16, 16, 3, padding=1), nn.Conv2d(16, 16, 3, padding=1)
        self.body = nn.Sequential(nn.Conv2d(16, 16, 3, padding=1), _Softsign(), nn.Conv2d(16, 16, 3, padding=1))
        self.head = nn.Linear(16, 10)

    def forward(self, x):
        h = self.stem(x)
        h = torch.relu(self.a(h)) + torch.relu(self.b(h))
        h = h + self.body(h)
        return self.head(h.mean((2, 3)))


class _Softsign(torch.nn.Module):
    def forward(self, x):
        return x / (1 + torch.abs(x))  # no IR rule: an opaque layer


def test_every_sum_is_listed_with_why_it_is_or_is_not_a_step():
    sums = find_sums(import_module(_TwoBranches(), X).graph)
    assert len(sums) == 2
    assert sums[0].step is None and sums[0].reason.startswith("not a residual step")
    step = sums[1].step
    assert step is not None and step.name == "body" and step.kind == "imported"
    assert step.problem == "body.1 (_Softsign) is an opaque layer that no MG level can re-instantiate"


def test_a_body_no_template_knows_is_kept_as_found():
    """timm's edge residual (3x3 expand, 1x1 project) is no template: the step keeps its own body."""
    from timm.models.efficientnet import _gen_test_efficientnet

    model = _gen_test_efficientnet("test_efficientnet", depth_multiplier=2.0, num_classes=10)
    steps = find_blocks(import_module(model, X).graph)
    edge = next(s for s in steps if s.name == "blocks.1.1")
    assert edge.kind == "imported" and [n["op"] for n in edge.attrs["body"]] == [
        "conv", "batchnorm", "silu", "conv", "batchnorm"]
    assert edge.attrs["body"][0]["name"] == "conv_exp" and edge.attrs["body"][1]["name"] == "bn1"
    assert {s.kind for s in steps if s.name.startswith("blocks.3")} == {"inverted"}  # SE inverted residuals
