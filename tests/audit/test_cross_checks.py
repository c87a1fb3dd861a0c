"""The IR's counts proven against independent oracles.

* parameters == the lowered module's ``sum(p.numel())`` (every registry model, base
  and MG, at reduced width; every paper spec at full size), == torchvision's own
  modules for the registry ResNets, and == the ONNX initializers after export;
* MACs == ``torch.utils.flop_counter.FlopCounterMode`` / 2 on the lowered module
  (run on the meta device, so full-size inputs cost no compute);
* torchvision's published numbers: resnet34 21,797,672 params / 3.664 GMACs,
  mobilenet_v2 3,504,872 params / 0.301 GMACs.
"""

from __future__ import annotations

import onnx
import pytest
import torch
import torchvision
from torch.utils.flop_counter import FlopCounterMode

import mgcompile
from mgcompile.models import family_of
from mgcompile.api import build, expand
from mgcompile.passes.count import count
from mgcompile.registry import list_models, list_spec_files, model_spec

REGISTRY = [e.name for e in list_models()]
PAPER = [n for n in list_spec_files() if n.startswith("paper/")]
RESNETS = [n for n in REGISTRY if n.startswith("resnet")]


def numel(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flop_counter_macs(model: torch.nn.Module, spec: mgcompile.Spec) -> int:
    """FlopCounterMode counts 2 FLOPs per MAC of conv / linear; meta tensors make it free."""
    model = model.to("meta").eval()
    x = torch.empty(1, spec.in_channels, *spec.input_size, device="meta")
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        model(x)
    total = fc.get_total_flops()
    assert total % 2 == 0
    return total // 2


def reduced(name: str) -> list[mgcompile.Spec]:
    """The registry model and MG versions of it, narrower where big (params do not depend on input size).

    The MG (s_g, θ) is the first of a few small pairs whose levels the widths allow.
    """
    spec = model_spec(name)
    mult = {"bottleneck": 0.25, "basic": 0.5}.get(spec.block, 1.0)
    small = spec.replace(width_mult=spec.width_mult * mult, input_size=(64, 64))
    try:
        family_of(small)
    except mgcompile.SpecError:  # a family with fixed widths (RegNet): fewer steps instead
        small = spec.replace(blocks=tuple(min(2, b) for b in spec.blocks), input_size=(64, 64))
    for g, theta in ((8, 16), (8, 32), (16, 32), (16, 64), (2, 64), (2, 128)):
        try:
            mg = small.replace(group_size=g, coarsest=theta)
            expand(mg)
        except mgcompile.MGCompileError:
            continue
        return [small, mg, mg.replace(cycle="additive", transfer="grouped")]
    raise AssertionError(f"no small MG configuration fits {name}")


@pytest.mark.parametrize("name", REGISTRY)
def test_registry_params_and_macs_match_lowered_module(name):
    for spec in reduced(name):
        graph = expand(spec)
        c = count(graph)
        model = build(graph)
        assert c.params == numel(model), spec
        assert c.macs == flop_counter_macs(model, spec), spec


@pytest.mark.parametrize("name", RESNETS)
def test_registry_resnets_match_torchvision_modules(name):
    tv = getattr(torchvision.models, name)()
    spec = model_spec(name)
    c = count(expand(spec))
    assert c.params == numel(tv)
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        tv.to("meta").eval()(torch.empty(1, 3, 224, 224, device="meta"))
    assert c.macs == fc.get_total_flops() // 2


@pytest.mark.parametrize("name", PAPER)
def test_paper_spec_params_and_macs_match_lowered_module(name):
    spec = model_spec(name)
    graph = expand(spec)
    c = count(graph)
    model = build(graph)
    assert c.params == numel(model)
    assert c.macs == flop_counter_macs(model, spec)
    assert sum(c.total.by_kind.values()) == c.params


def test_torchvision_published_resnet34():
    c = count(expand(model_spec("resnet34")))
    assert c.params == 21_797_672
    assert round(c.macs / 1e9, 3) == 3.664


def test_torchvision_published_mobilenet_v2():
    """The MAC convention (conv + linear, FlopCounterMode / 2) against torchvision's published 0.301 GMACs.

    When the registry has ``mobilenet_v2`` its IR count is checked too.
    """
    tv = torchvision.models.mobilenet_v2()
    assert numel(tv) == 3_504_872
    with torch.no_grad(), FlopCounterMode(display=False) as fc:
        tv.to("meta").eval()(torch.empty(1, 3, 224, 224, device="meta"))
    assert round(fc.get_total_flops() / 2 / 1e9, 3) == 0.301
    try:
        spec = model_spec("mobilenet_v2")
    except mgcompile.MGCompileError:
        return
    c = count(expand(spec))
    assert c.params == 3_504_872
    assert round(c.macs / 1e9, 3) == 0.301


def test_params_match_onnx_initializers(tmp_path, tiny_mg_spec):
    """How BN is accounted: the IR counts 2 parameters per BN channel (weight, bias). The dynamo
    exporter folds every BN that directly follows a conv into that conv (2 per channel become the
    conv's 1 bias per channel); a BN after a prolongation sits behind its permutation Gather and
    stays a BatchNormalization node, whose running mean and variance (buffers, not parameters)
    add 2 float initializers per channel. The sparse permutations become int64 Gather indices.
    Values are randomised first so the exporter cannot merge equal constants."""
    graph = expand(tiny_mg_spec)
    model = build(graph).eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.rand(p.shape, generator=g) + 0.5)
        for name, b in model.named_buffers():
            if b.is_floating_point():
                b.copy_(torch.rand(b.shape, generator=g) + 0.5)
    path = tmp_path / "m.onnx"
    torch.onnx.export(model, (torch.randn(1, 3, *tiny_mg_spec.input_size),), str(path), dynamo=True,
                      external_data=False)
    proto = onnx.load(str(path))
    sizes = {onnx.TensorProto.FLOAT: 0, onnx.TensorProto.INT64: 0}
    for init in proto.graph.initializer:
        n = 1
        for d in init.dims:
            n *= d
        if init.data_type == onnx.TensorProto.FLOAT or n > 2:  # int64 pairs are Reshape shape constants
            sizes[init.data_type] = sizes.get(init.data_type, 0) + n
    c = count(graph)
    bns = graph.nodes("batchnorm")
    folded = sum(graph.attrs(n)["channels"] for n in bns if graph.op(graph.inputs(n)[0]) == "conv")
    kept = sum(graph.attrs(n)["channels"] for n in bns if graph.op(graph.inputs(n)[0]) != "conv")
    assert folded and kept
    assert c.total.by_kind["norm"] == 2 * (folded + kept)
    assert sizes[onnx.TensorProto.FLOAT] == c.params - 2 * folded + folded + 2 * kept
    assert sum(1 for n in proto.graph.node if n.op_type == "BatchNormalization") == \
        sum(1 for n in bns if graph.op(graph.inputs(n)[0]) != "conv")
    perm = sum(graph.attrs(n)["in_channels"] for n in graph.nodes("restrict")) + \
        sum(graph.attrs(n)["out_channels"] for n in graph.nodes("prolong"))
    assert sizes[onnx.TensorProto.INT64] == perm
