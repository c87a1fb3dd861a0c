"""Pass contracts: run_passes refuses a pass whose requirement its input misses, checks what the pass ensures,
and records which passes changed the graph."""

from __future__ import annotations

import pytest

import mgcompile
from mgcompile.errors import InternalError
from mgcompile.ir.graph import Graph
from mgcompile.models import graph_from_spec
from mgcompile.passes.contract import CONDITIONS, contract
from mgcompile.passes.expand_multigrid_cycles import expand_multigrid_cycles
from mgcompile.passes.expand_steps import expand_steps
from mgcompile.passes.fold_batchnorm import fold_batchnorm
from mgcompile.passes.fold_permutations import fold_permutations
from mgcompile.passes.infer_shapes import infer_shapes
from mgcompile.passes.pipeline import LOWERING, run_passes


def _tiny() -> Graph:
    """input -> conv -> bn -> relu -> output, no shapes yet."""
    g = Graph()
    g.add("input", "input", channels=4, height=4, width=4)
    g.add("c", "conv", ["input"], in_channels=4, out_channels=4, kernel=3, padding=1)
    g.add("bn", "batchnorm", ["c"], channels=4)
    g.add("relu", "relu", ["bn"])
    g.add("output", "output", ["relu"])
    return g


def test_every_pass_declares_known_conditions():
    for p in (*LOWERING, fold_batchnorm, fold_permutations):
        assert set(p.requires) | set(p.ensures) <= set(CONDITIONS), p.__name__
    assert "no_macros" in expand_steps.ensures and "shapes_inferred" in infer_shapes.ensures


def test_a_pass_whose_requirement_is_unmet_is_refused_naming_the_pass_and_the_condition():
    spec_graph = graph_from_spec(mgcompile.model_spec("mg_cifar_resnet_g8c16"))  # step macros
    with pytest.raises(InternalError, match=r"pass fold_batchnorm requires no_macros \(no residual or transition"):
        run_passes(spec_graph, [fold_batchnorm])
    cycled = run_passes(spec_graph, [expand_multigrid_cycles])
    with pytest.raises(InternalError, match=r"pass expand_multigrid_cycles \(after expand_steps\) requires not_cycled"):
        run_passes(cycled, [expand_steps, expand_multigrid_cycles])


def test_a_pass_that_breaks_its_promise_is_an_internal_error():
    @contract(ensures=("bn_folded",))
    def lazy_fold(graph: Graph) -> Graph:
        return graph.copy()

    with pytest.raises(InternalError, match=r"pass lazy_fold \(after infer_shapes\) should ensure bn_folded"):
        run_passes(_tiny(), [infer_shapes, lazy_fold])
    with pytest.raises(ValueError, match="unknown pass condition"):
        contract(requires=("no_such_thing",))


def test_run_passes_records_which_passes_changed_the_graph():
    g = _tiny()
    out = run_passes(g, [infer_shapes, fold_permutations, fold_batchnorm, fold_batchnorm])
    assert out.meta_graph.pass_log == [("infer_shapes", True), ("fold_permutations", False),
                                       ("fold_batchnorm", True), ("fold_batchnorm", False)]
    assert g.meta_graph.pass_log == [] and out.nodes("batchnorm") == []  # the input is never touched
    again = run_passes(out, [fold_permutations])
    assert again.meta_graph.pass_log[-1] == ("fold_permutations", False) and len(again.meta_graph.pass_log) == 5
    assert out.meta_graph.pass_log[-1] == ("fold_batchnorm", False)
    base = mgcompile.expand(mgcompile.model_spec("cifar_resnet"))  # no MG parameters: those passes change nothing
    assert base.meta_graph.pass_log == [("replace_transitions", False), ("expand_multigrid_cycles", False),
                                        ("expand_steps", True), ("infer_shapes", True)]
