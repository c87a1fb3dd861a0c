"""Expansion passes: every registry model and paper spec expands; cycle structure; paper counts."""

from __future__ import annotations

import math

import numpy as np
import pytest

import mgcompile
from mgcompile.passes import count
from mgcompile.registry import list_spec_files

REGISTRY = ["cifar_resnet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
            "mg_cifar_resnet_g8c16", "mg_resnet18_g32c64", "mg_resnet34_g32c64", "mg_resnet50_g32c64"]


@pytest.mark.parametrize("name", REGISTRY)
def test_every_registry_model_expands_to_primitive_ops(name):
    g = mgcompile.expand(mgcompile.model_spec(name))
    mgcompile.verify(g, allow_macros=False)
    assert not g.nodes("residual") and not g.nodes("transition")
    if name.startswith("mg_"):
        assert g.nodes("restrict") and len(g.nodes("restrict")) == len(g.nodes("prolong"))


@pytest.mark.parametrize("name", [n for n in list_spec_files() if n.startswith("paper/")])
def test_paper_specs_expand_and_consistent_rows_are_within_3_percent(name):
    spec = mgcompile.model_spec(name)
    params = count(mgcompile.expand(spec)).params
    gap = (params / 1e6 - spec.paper.params_m) / spec.paper.params_m
    if spec.paper.consistent:
        assert abs(gap) <= 0.03, f"{name}: {params} vs paper {spec.paper.params_m}M"


def test_torchvision_resnet34_counts_exactly():
    r = count(mgcompile.expand(mgcompile.model_spec("resnet34")))
    assert r.params == 21_797_672
    assert round(r.macs / 1e9, 3) == 3.664


def test_cycle_levels_follow_the_level_rule():
    g = mgcompile.expand(mgcompile.model_spec("mg_resnet34_g32c64"))
    steps = g.meta_graph.steps
    assert steps["stage4.block1"].fine == [512, 256, 128, 64] and steps["stage4.block1"].coarsest == 32
    assert steps["stage1.block0"].fine == [64] and steps["stage1.block0"].coarsest == 32
    # the coarsest step is fully coupled, fine steps grouped with groups = C_j / s_g
    assert g.attrs("stage4.block1.level4.conv1")["groups"] == 1
    assert g.attrs("stage4.block1.level4.conv1")["in_channels"] == 32
    assert g.attrs("stage4.block1.level0.conv1")["groups"] == 512 // 32
    assert g.attrs("stage4.block1.level3.conv1")["groups"] == 64 // 32
    # a stage of n blocks has n cycles after the paper transition
    assert sum(1 for s, i in steps.items() if s.startswith("stage2.") and i.status == "cycle") == 4
    assert g.op("stage2.block0.transition.conv") == "conv" and g.attrs("stage2.block0.transition.conv")["groups"] == 64


def test_sparse_transfer_nnz_is_clamped_and_noted():
    spec = mgcompile.model_spec("cifar_resnet", channels=(96,), blocks=(1,), group_size=32, coarsest=64)
    g = mgcompile.expand(spec)
    r = g.attrs("stage1.block0.level0.restrict")
    # t = 32 would need 2t=64 | 96: lowered to the largest t' with 2t' | 96, i.e. 24
    assert r["in_channels"] // r["groups"] == 48
    assert any("nnz per level [24]" in n for n in g.meta_graph.notes)
    # sparse parameters: C_j * t for R plus C_j * t for P
    assert count(g).total.by_kind["transfer"] == 2 * 96 * 24


def test_narrow_blocks_stay_base_steps_and_are_noted():
    g = mgcompile.expand(mgcompile.model_spec("paper/t1_c10_mg_16-128_g8c16"))
    steps = g.meta_graph.steps
    assert steps["stage1.block0"].status == "cycle"
    g2 = mgcompile.expand(mgcompile.model_spec("cifar_resnet", channels=(8, 16), blocks=(1, 1), group_size=8, coarsest=16))
    assert g2.meta_graph.steps["stage1.block0"].status == "coarse"
    assert any("already coarse" in n for n in g2.meta_graph.notes)


def test_keep_transition_keeps_the_strided_block():
    g = mgcompile.expand(mgcompile.model_spec("mg_cifar_resnet_g8c16_keep"))
    assert "stage2.block0.shortcut.conv" in g
    assert g.meta_graph.steps["stage2.block0"].status == "kept"
    assert not any(".transition" in n for n in g.nodes())


def test_bottleneck_cycle_groups_every_conv_by_block_width():
    g = mgcompile.expand(mgcompile.model_spec("mg_resnet50_g32c64"))
    for conv in ("conv1", "conv2", "conv3"):
        assert g.attrs(f"stage4.block1.level0.{conv}")["groups"] == 2048 // 32


def _fit_exponent(widths, values):
    return float(np.polyfit(np.log(widths), np.log(values), 1)[0])


def test_parameters_grow_linearly_with_width_for_mg_and_quadratically_for_base():
    mults = [1, 2, 4, 8]
    mg, base = [], []
    for m in mults:
        spec = mgcompile.model_spec("cifar_resnet", channels=(64 * m, 128 * m, 256 * m, 512 * m), group_size=16, coarsest=64)
        mg.append(count(mgcompile.expand(spec)).params)
        base.append(count(mgcompile.expand(spec.base())).params)
    assert _fit_exponent(mults, base) == pytest.approx(2.0, abs=0.1)
    assert _fit_exponent(mults, mg) < 1.3
    assert math.isclose(mg[-1] / mg[-2], 2.0, rel_tol=0.15)


def test_group_size_must_divide_bottleneck_inner_width():
    with pytest.raises(mgcompile.SpecError, match="inner width"):
        mgcompile.expand(mgcompile.model_spec("resnet50", group_size=2, coarsest=1024))


def test_mobilenet_uneven_level_uses_floor_groups_and_is_noted():
    g = mgcompile.expand(mgcompile.model_spec("mobilenet_v2", group_size=32, coarsest=64))
    assert g.attrs("stage6.block1.level1.conv1")["groups"] == 2          # 80 channels: 2 groups of 40
    assert g.attrs("stage6.block1.level0.conv1")["groups"] == 160 // 32
    assert g.attrs("stage6.block1.level0.conv2")["groups"] == 960        # depth-wise stays depth-wise
    assert any("does not divide level width 80: 2 groups of 40" in n for n in g.meta_graph.notes)
    assert count(g).params == 3_076_520


def test_passes_never_modify_their_input_graph():
    from mgcompile.models import graph_from_spec
    from mgcompile.passes import run_passes

    g0 = graph_from_spec(mgcompile.model_spec("cifar_resnet", channels=(96,), blocks=(1,), group_size=32, coarsest=64))
    before = g0.to_json()
    first, second = run_passes(g0), run_passes(g0)
    assert g0.to_json() == before
    assert first.meta_graph.notes == second.meta_graph.notes and len(first.meta_graph.notes) == 1


@pytest.mark.parametrize("name", [n for n in list_spec_files() if n.startswith("examples/")])
def test_example_specs_expand(name):
    spec = mgcompile.model_spec(name)
    g = mgcompile.expand(spec)
    mgcompile.verify(g, allow_macros=False)
    assert spec.is_multigrid and any(i.status == "cycle" for i in g.meta_graph.steps.values())


def test_a_pass_that_breaks_the_graph_is_an_internal_error_not_a_user_error():
    from mgcompile.errors import InternalError, MGCompileError
    from mgcompile.models import graph_from_spec
    from mgcompile.passes.pipeline import LOWERING, run_passes

    def broken(graph):  # rewires a node without re-running shape inference: verify must catch it
        g = graph.copy()
        conv = g.nodes("conv")[1]
        g.attrs(conv)["out_channels"] += 1
        return g

    graph = graph_from_spec(mgcompile.model_spec("cifar_resnet", channels=(16,), blocks=(1,)))
    with pytest.raises(InternalError, match="pass broken .* produced an ill-formed graph") as info:
        run_passes(graph, (*LOWERING, broken))
    assert not isinstance(info.value, MGCompileError) and info.value.__cause__ is not None


def test_a_costly_cycle_is_built_and_noted_in_a_paper_spec_but_kept_when_only_profitable():
    spec = mgcompile.model_spec("paper/t1_c10_mg_16-128_g16c16")
    g = mgcompile.expand(spec)
    assert g.meta_graph.steps["stage1.block0"].status == "cycle"
    assert any(n.startswith("stage1.block0: costs more than the step it replaces") for n in g.meta_graph.notes)
    kept = mgcompile.expand(spec.replace(only_profitable=True))
    step = kept.meta_graph.steps["stage1.block0"]
    assert step.status == "kept" and step.reason.startswith("would not pay: the cycle would cost 6,144 params")
    assert count(kept).params < count(g).params
    # the note's count, by hand: the 16-wide level (one group of 16: two 3x3 convs + BNs), R and P with
    # t = 8 nonzeros per row + the BN after P, and the fully coupled 8-wide coarsest step
    assert (2 * 9 * 16 * 16 + 4 * 16) + (2 * 16 * 8 + 2 * 16) + (2 * 9 * 8 * 8 + 4 * 8) == 6_144
