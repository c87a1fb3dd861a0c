"""Cutting one step out of a network: the slice computes exactly what the step computes inside the network."""

from __future__ import annotations

import pytest
import torch
import torch.fx

import mgcompile
from mgcompile.errors import GraphError
from mgcompile.ir.slice import step_graph


def tagged(graph, tag: str) -> list[str]:
    """The nodes whose ``meta['step']`` is exactly ``tag``, in topological order."""
    return [n for n in graph.nodes() if graph.meta(n).get("step") == tag]


def activations(model: torch.fx.GraphModule, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every fx node's value in one forward pass (fx names are the IR names with '_' for '.')."""
    seen: dict[str, torch.Tensor] = {}

    class Recorder(torch.fx.Interpreter):
        def run_node(self, n):
            seen[n.name] = out = super().run_node(n)
            return out

    Recorder(model).run(x)
    return seen


@pytest.mark.parametrize("multigrid", [True, False])
def test_each_step_slice_reproduces_the_step_inside_the_network(tiny_mg_spec, with_random_bn, multigrid):
    graph = mgcompile.expand(tiny_mg_spec)
    if not multigrid:
        graph = mgcompile.expand(tiny_mg_spec.base())
    model = with_random_bn(mgcompile.build(graph))
    x = torch.randn(2, *graph.input_shape())
    seen = activations(model, x)
    steps = ["stage1.block0", "stage2.block0", "stage3.block0"]
    tags = {graph.meta(n)["step"] for n in graph.nodes() if "step" in graph.meta(n)}
    assert {tag.split(".transition")[0] for tag in tags} == set(steps)
    for step in steps:
        sliced = step_graph(graph, step)
        members = [n for n in sliced.nodes() if n not in ("input", "output")]
        assert members and all(graph.meta(n)["step"].startswith(step) for n in members)
        part = mgcompile.build(sliced).eval()
        own = part.state_dict()
        part.load_state_dict({k: v for k, v in model.state_dict().items() if k in own})
        (feed,) = {i for n in members for i in graph.inputs(n) if i not in members}
        last = sliced.inputs("output")[0]
        with torch.no_grad():
            got = part(seen[feed.replace(".", "_")])
        torch.testing.assert_close(got, seen[last.replace(".", "_")], rtol=1e-5, atol=1e-5)
        assert sliced.shape("output") == graph.shape(last)
        assert sliced.input_shape() == graph.shape(feed)


def test_mg_and_base_slices_of_a_strided_step_read_and_write_the_same_shapes(tiny_mg_spec):
    mg, base = mgcompile.expand(tiny_mg_spec), mgcompile.expand(tiny_mg_spec.base())
    a, b = step_graph(mg, "stage2.block0"), step_graph(base, "stage2.block0")
    assert any(".transition." in n for n in a.nodes())  # the transition belongs to the step it replaced
    assert a.input_shape() == b.input_shape() == (16, 16, 16)
    assert a.shape("output") == b.shape("output") == (32, 8, 8)


def test_slicing_refuses_unknown_steps_and_steps_with_two_inputs(tiny_mg_spec):
    graph = mgcompile.expand(tiny_mg_spec)
    with pytest.raises(GraphError, match="no step named 'stage9.block0'"):
        step_graph(graph, "stage9.block0")
    g = graph.copy()
    last = tagged(g, "stage3.block0")[-1]
    extra = g.add("stage3.block0.extra", "add", [last, "stem.relu"], meta={"step": "stage3.block0"})
    g.replace_uses(last, extra, exclude=[extra])
    with pytest.raises(GraphError, match="reads 2 and hands on 1"):
        step_graph(g, "stage3.block0")
