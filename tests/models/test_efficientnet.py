"""EfficientNet-B0: torchvision's exact counts and function, torchvision's stochastic depth, a working MG version."""

from __future__ import annotations

import pytest
import torch

import mgcompile
from mgcompile.errors import SpecError
from mgcompile.passes import count

TORCHVISION_EFFICIENTNET_B0_PARAMS = 5_288_548  # torchvision's EfficientNet_B0_Weights meta "num_params"
B0_STAGES = [(1, 3, 1, 32, 16), (6, 3, 2, 16, 24), (6, 5, 2, 24, 40), (6, 3, 2, 40, 80), (6, 5, 1, 80, 112),
             (6, 5, 2, 112, 192), (6, 3, 1, 192, 320)]  # (expand, kernel, stride, in, out), torchvision's table
REDUCED = dict(width_mult=0.25, blocks=(1, 2, 1, 2, 2, 2, 1), input_size=(32, 32), num_classes=10)


def _torchvision(width_mult: float = 1.0, blocks=(1, 2, 2, 3, 3, 4, 1), num_classes: int = 1000):
    """torchvision's EfficientNet built from its public MBConvConfig table, with our block counts."""
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig

    setting = [MBConvConfig(t, k, s, cin, cout, n, width_mult=width_mult)
               for (t, k, s, cin, cout), n in zip(B0_STAGES, blocks)]
    return EfficientNet(setting, dropout=0.2, num_classes=num_classes)


def test_efficientnet_b0_params_equal_torchvision(family_checks):
    params = family_checks.base_params_equal_torchvision("efficientnet_b0", "efficientnet_b0")
    assert params == TORCHVISION_EFFICIENTNET_B0_PARAMS


def test_efficientnet_b0_macs_match_torchvision():
    # torchvision's meta "_ops" for EfficientNet-B0: 0.386 GFLOPs (multiply-accumulates)
    assert round(count(mgcompile.expand(mgcompile.model_spec("efficientnet_b0"))).macs / 1e9, 3) == 0.386


@pytest.mark.parametrize("width_mult, blocks", [(0.5, (1, 2, 2, 3, 3, 4, 1)), (1.3, (1, 2, 2, 3, 3, 4, 1)),
                                                (0.25, (1, 2, 1, 2, 2, 2, 1)), (1.0, (1, 3, 3, 4, 4, 5, 2))])
def test_width_mult_and_blocks_params_equal_torchvision(width_mult, blocks):
    spec = mgcompile.model_spec("efficientnet_b0", width_mult=width_mult, blocks=blocks)
    tv = _torchvision(width_mult, blocks)
    assert count(mgcompile.expand(spec)).params == sum(p.numel() for p in tv.parameters())


def test_stochastic_depth_bn_and_se_follow_torchvision():
    """Rates 0.2 * block_index / total on the identity-shortcut blocks only; BN eps 1e-5; SE squeeze = in // 4."""
    from torchvision.models.efficientnet import MBConv

    graph = mgcompile.expand(mgcompile.model_spec("efficientnet_b0"))
    tv = _torchvision()
    blocks = [m for m in tv.modules() if isinstance(m, MBConv)]
    assert [pytest.approx(graph.attrs(n)["p"]) for n in graph.nodes("drop_path")] == \
        [m.stochastic_depth.p for m in blocks if m.use_res_connect]
    assert {graph.attrs(n)["eps"] for n in graph.nodes("batchnorm")} == \
        {m.eps for m in tv.modules() if isinstance(m, torch.nn.BatchNorm2d)} == {1e-5}
    squeezes = [graph.attrs(n)["squeeze"] for n in graph.nodes("squeeze_excite")]
    assert squeezes == [m.block[-2].fc1.out_channels for m in blocks]


def test_reduced_base_computes_torchvision_efficientnet(with_random_bn):
    """Same layers in the same order and the same function as torchvision's module (eval mode)."""
    ours = mgcompile.build(mgcompile.expand(mgcompile.model_spec("efficientnet_b0", **REDUCED)))
    torch.manual_seed(0)
    tv = with_random_bn(_torchvision(REDUCED["width_mult"], REDUCED["blocks"], num_classes=10))
    mine, theirs = ours.state_dict(), tv.state_dict()
    assert len(mine) == len(theirs)
    for (k, v), (tk, tvv) in zip(mine.items(), theirs.items()):
        assert k.rsplit(".", 1)[1] == tk.rsplit(".", 1)[1] and v.shape == tvv.shape, (k, tk)
    ours.load_state_dict(dict(zip(mine, theirs.values())))
    ours.eval()
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=1e-4, atol=1e-5)


def test_mg_reduced_lowers_trains_and_exports(family_checks):
    spec = mgcompile.model_spec("efficientnet_b0", **REDUCED, group_size=8, coarsest=16)
    family_checks.mg_lowers_trains_and_exports(spec)


def test_mg_efficientnet_b0_has_fewer_params_than_base():
    base = count(mgcompile.expand(mgcompile.model_spec("efficientnet_b0")))
    spec = mgcompile.model_spec("mg_efficientnet_b0_g32c64")
    assert spec.only_profitable  # the registry spec keeps a step whose cycle would not pay
    graph = mgcompile.expand(spec)
    mg = count(graph)
    assert mg.params < base.params and mg.macs < base.macs
    cycles = sorted(n for n, i in graph.meta_graph.steps.items() if i.status == "cycle")
    # the constant-width blocks at width >= θ=64: stages 4 (80), 5 (112) and 6 (192)
    assert cycles == ["stage4.block1", "stage4.block2", "stage5.block1", "stage5.block2",
                      "stage6.block1", "stage6.block2", "stage6.block3"]
    assert (mg.params, mg.macs) == (4_572_768, 332_473_344)


@pytest.mark.parametrize("overrides, field", [
    ({"variant": "b7"}, "variant"),
    ({"channels": (16, 24, 40, 80, 112, 192), "blocks": (1, 2, 2, 3, 3, 4)}, "channels"),
    ({"stem": "cifar"}, "stem"),
])
def test_invalid_specs_name_the_field(overrides, field):
    with pytest.raises(SpecError, match=f"field '{field}'"):
        mgcompile.model_spec("efficientnet_b0", **overrides)
