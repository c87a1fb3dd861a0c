"""Activation memory from the IR vs the lowered module's actual intermediate tensors."""

from __future__ import annotations

import torch
from torch.fx.passes.shape_prop import ShapeProp

from mgcompile.api import build, expand
from mgcompile.audit.activations import activation_elements


def test_activation_elements_match_shape_propagation(tiny_mg_spec):
    graph = expand(tiny_mg_spec)
    model = build(graph).eval()
    x = torch.randn(3, 3, *tiny_mg_spec.input_size)
    ShapeProp(model).propagate(x)
    produced = {}
    for node in model.graph.nodes:
        if node.op in ("placeholder", "output") or node.target is torch.flatten:
            continue
        produced[node.name] = node.meta["tensor_meta"].shape.numel()
    report = activation_elements(graph, batch_size=3)
    assert report.elements == sum(produced.values())
    assert sorted(report.nodes.values()) == sorted(produced.values())
    assert sum(report.stages.values()) == report.elements


def test_activation_elements_scale_with_batch(tiny_mg_spec):
    graph = expand(tiny_mg_spec)
    one, eight = activation_elements(graph, 1), activation_elements(graph, 8)
    assert eight.elements == 8 * one.elements
    assert one.largest[1] == max(one.nodes.values())
