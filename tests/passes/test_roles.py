"""Node roles: set by the pass that makes a node, found with ``graph.nodes(role=...)``; every cycled step's input
and output are found by role in the base network and in the MG network (issue 15 fits each step this way)."""

from __future__ import annotations

import pytest

import mgcompile
from mgcompile.errors import GraphError
from mgcompile.ir.graph import Graph
from mgcompile.ir.roles import Role


def _cycled(graph: Graph) -> list[str]:
    return [s for s, info in graph.meta_graph.steps.items() if info.status == "cycle"]


def _boundary(graph: Graph, step: str) -> tuple[str, str]:
    (x,) = graph.nodes(role=Role.STEP_INPUT, step=step)
    (y,) = graph.nodes(role=Role.STEP_OUTPUT, step=step)
    return x, y


def _check_steps_map(base: Graph, mg: Graph, steps: list[str]) -> None:
    assert steps
    for step in steps:
        bx, by = _boundary(base, step)
        mx, my = _boundary(mg, step)
        assert base.shape(bx) == mg.shape(mx) and base.shape(by) == mg.shape(my), step
        assert mx not in mg.nodes(role=Role.LEVEL_BODY, step=step)  # the input is read by the cycle, not made by it
        assert my in mg.nodes(role=Role.LEVEL_BODY, step=step)  # the output is its finest level's
        assert mg.meta(my)["level"] == 0


def test_a_registry_models_cycled_steps_map_to_its_base_networks_steps():
    spec = mgcompile.model_spec("mg_resnet18_g32c64")
    mg = mgcompile.expand(spec)
    base = mgcompile.expand(spec.base())
    _check_steps_map(base, mg, _cycled(mg))


def test_a_converted_torchvision_models_cycled_steps_map_to_its_imported_steps():
    torch = pytest.importorskip("torch")
    torchvision = pytest.importorskip("torchvision")
    converted = mgcompile.convert(torchvision.models.resnet18(num_classes=10), group_size=16, coarsest=32,
                                  example_input=torch.randn(1, 3, 32, 32))
    mg = converted.mg_graph
    base = Graph.from_dict(mg.meta_graph.base_graph)
    _check_steps_map(base, mg, _cycled(mg))


def test_cycle_nodes_play_their_jobs_and_no_role_leaks_into_expanded_nodes():
    g = mgcompile.expand(mgcompile.model_spec("mg_cifar_resnet_g8c16"))
    step = _cycled(g)[0]
    bns = g.nodes(role=Role.CORRECTION_BN, step=step)
    assert bns and all(g.op(n) == "batchnorm" and g.op(g.inputs(n)[0]) == "prolong" for n in bns)
    assert all(g.op(n) == "restrict" for n in g.nodes(role=Role.RESTRICT, step=step))
    assert len(g.nodes(role=Role.PROLONG, step=step)) == len(bns) == len(g.nodes(role=Role.TAU, step=step))
    sums = g.nodes(role=Role.RESIDUAL_SUM, step=step)
    assert len(sums) == len(bns) + 1 and all(g.op(n) == "add" for n in sums)  # one per level
    coarse = g.nodes(role=Role.COARSE_LEVEL, step=step)
    assert coarse and set(coarse) <= set(g.nodes(role=Role.LEVEL_BODY, step=step))
    assert not set(bns) & set(g.nodes(role=Role.LEVEL_BODY))
    # a step's output is one node, and only the step boundaries move when a node is replaced
    assert all(len(g.nodes(role=Role.STEP_OUTPUT, step=s)) == 1 for s in g.meta_graph.steps)


def test_nodes_by_step_needs_a_role():
    g = mgcompile.expand(mgcompile.model_spec("cifar_resnet"))
    with pytest.raises(GraphError, match="needs a role"):
        g.nodes(step="stage1.block0")


@pytest.mark.parametrize("folder", ["v0_1_0_spec_folder", "main_33688c4_spec_folder"])
def test_a_version_1_graph_reads_back_with_the_roles_the_passes_give_today(folder):
    from pathlib import Path

    here = Path(__file__).resolve().parents[1] / "fixtures" / folder
    old = Graph.from_json((here / "graph.json").read_text())
    new = mgcompile.expand(mgcompile.Spec.from_file(here / "spec.yaml"))
    assert set(old.nodes()) == set(new.nodes())
    assert {n: old.roles(n) for n in old.nodes()} == {n: new.roles(n) for n in new.nodes()}
    assert all("role" not in old.meta(n) for n in old.nodes())
