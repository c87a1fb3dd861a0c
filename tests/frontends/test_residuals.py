"""Residual steps are found by dataflow in torchvision and hand-written modules."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch
import torchvision

from mgcompile.frontends.residuals import find_sums
from mgcompile.frontends.torch_import import import_module

_spec = importlib.util.spec_from_file_location("user_nets", Path(__file__).with_name("user_nets.py"))
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
