"""RegNetX/Y-400MF: torchvision's derived stages, exact counts and function, and a working MG version."""

from __future__ import annotations

import re

import pytest
import torch

import mgcompile
from mgcompile.errors import SpecError
from mgcompile.models.regnet import VARIANTS, regnet_stages
from mgcompile.passes import count

TORCHVISION_PARAMS = {"regnet_x_400mf": 5_495_976, "regnet_y_400mf": 4_344_144}  # weights meta "num_params"
TORCHVISION_GFLOPS = {"regnet_x_400mf": 0.414, "regnet_y_400mf": 0.402}  # weights meta "_ops"
DERIVED = {"regnet_x_400mf": ((32, 64, 160, 400), (1, 2, 7, 12)), "regnet_y_400mf": ((48, 104, 208, 440), (1, 3, 6, 6))}
REDUCED = {"regnet_x_400mf": dict(channels=(16, 32, 48, 64), blocks=(1, 2, 2, 2)),
           "regnet_y_400mf": dict(channels=(16, 24, 48, 64), blocks=(1, 2, 2, 2))}


def _torchvision_block_params(name: str):
    from torchvision.models.regnet import BlockParams

    p = VARIANTS[name.removeprefix("regnet_")]
    return BlockParams.from_init_params(depth=p.depth, w_0=p.w_0, w_a=p.w_a, w_m=p.w_m, group_width=p.group_width,
                                        se_ratio=p.se_ratio)


def _torchvision_reduced(name: str, channels, blocks, num_classes: int):
    """torchvision's RegNet with our stage widths/depths (its public BlockParams; group width min(g, width))."""
    from torchvision.models.regnet import BlockParams, RegNet

    p = VARIANTS[name.removeprefix("regnet_")]
    n = len(channels)
    params = BlockParams(depths=list(blocks), widths=list(channels),
                         group_widths=[min(p.group_width, c) for c in channels], bottleneck_multipliers=[1.0] * n,
                         strides=[2] * n, se_ratio=p.se_ratio)
    return RegNet(params, num_classes=num_classes)


def _in_our_order(state: dict) -> list:
    """torchvision's state entries with each block's projection moved after its transform (our step order)."""
    def block(key: str) -> str:
        m = re.match(r"trunk_output\.block\d+\.block\d+-\d+\.", key)
        return m.group(0) if m else key

    first: dict[str, int] = {}
    for key in state:
        first.setdefault(block(key), len(first))
    return sorted(state.items(), key=lambda kv: (first[block(kv[0])], ".proj." in kv[0]))  # stable within a block


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_base_params_equal_torchvision(family_checks, name):
    assert family_checks.base_params_equal_torchvision(name, name) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_macs_match_torchvision(name):
    assert round(count(mgcompile.expand(mgcompile.model_spec(name))).macs / 1e9, 3) == TORCHVISION_GFLOPS[name]


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_quantized_linear_stages_equal_torchvision(name):
    """Our derivation from (depth, w_0, w_a, w_m, group width) gives torchvision's BlockParams, and the registry spec."""
    tv = _torchvision_block_params(name)
    widths, depths, groups = regnet_stages(VARIANTS[name.removeprefix("regnet_")])
    assert (widths, depths, groups) == (tuple(tv.widths), tuple(tv.depths), tuple(tv.group_widths))
    spec = mgcompile.model_spec(name)
    assert (spec.channels, spec.blocks) == DERIVED[name] == (widths, depths)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_reduced_base_computes_torchvision_regnet(with_random_bn, name):
    """Narrower widths, fewer blocks: the same layers (projection, grouped 3x3, SE) and function as torchvision's."""
    spec = mgcompile.model_spec(name, **REDUCED[name], input_size=(32, 32), num_classes=10)
    ours = mgcompile.build(mgcompile.expand(spec))
    torch.manual_seed(0)
    tv = with_random_bn(_torchvision_reduced(name, *REDUCED[name].values(), num_classes=10))
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())
    theirs, mine = _in_our_order(tv.state_dict()), ours.state_dict()
    assert len(mine) == len(theirs)
    for (k, v), (tk, tvv) in zip(mine.items(), theirs):
        assert k.rsplit(".", 1)[1] == tk.rsplit(".", 1)[1] and v.shape == tvv.shape, (k, tk)
        assert ("shortcut" in k) == (".proj." in tk), (k, tk)
    ours.load_state_dict({k: v for k, (_, v) in zip(mine, theirs)})
    ours.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_mg_reduced_lowers_trains_and_exports(family_checks, name):
    spec = mgcompile.model_spec(name, **REDUCED[name], input_size=(32, 32), num_classes=10, group_size=8, coarsest=16)
    family_checks.mg_lowers_trains_and_exports(spec)


MG_G32_C64 = {"regnet_x_400mf": (3_220_216, 287_219_148), "regnet_y_400mf": (3_126_364, 310_992_433)}


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_mg_has_fewer_params_than_base(name):
    """At g32/θ64 the narrow stage 2 does not pay (kept); stages 3 and 4 become cycles."""
    base = count(mgcompile.expand(mgcompile.model_spec(name)))
    spec = mgcompile.model_spec(f"mg_{name}_g32c64")
    assert spec.only_profitable  # the registry spec keeps a step whose cycle would not pay
    graph = mgcompile.expand(spec)
    mg = count(graph)
    assert mg.params < base.params and mg.macs < base.macs
    steps = graph.meta_graph.steps
    for step, info in steps.items():
        stage, block = re.match(r"stage(\d)\.block(\d+)", step).groups()
        if block == "0":
            assert info.status == "kept", step  # strided / width-changing
        elif stage == "2":
            assert info.status == "kept" and info.reason.startswith("would not pay"), step
        else:
            assert info.status == "cycle", step
    assert (mg.params, mg.macs) == MG_G32_C64[name]


@pytest.mark.parametrize("overrides, field", [
    ({"variant": "x_800mf"}, "variant"),
    ({"width_mult": 0.5}, "width_mult"),
    ({"channels": (32, 64, 168, 400)}, "channels"),  # 168 is not a multiple of x_400mf's group width 16
    ({"stem": "cifar"}, "stem"),
])
def test_invalid_specs_name_the_field(overrides, field):
    with pytest.raises(SpecError, match=f"field '{field}'"):
        mgcompile.model_spec("regnet_x_400mf", **overrides)
