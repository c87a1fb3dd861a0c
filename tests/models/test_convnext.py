"""ConvNeXt family: exact torchvision counts, the same function as torchvision's module, and a working MG version."""

from __future__ import annotations

import pytest
import torch

import mgcompile
from mgcompile.errors import SpecError
from mgcompile.passes import count

TORCHVISION_CONVNEXT_TINY_PARAMS = 28_589_128  # torchvision's ConvNeXt_Tiny_Weights meta "num_params"


def test_convnext_tiny_params_equal_torchvision(family_checks):
    assert family_checks.base_params_equal_torchvision("convnext_tiny", "convnext_tiny") == TORCHVISION_CONVNEXT_TINY_PARAMS


def test_convnext_tiny_macs_match_torchvision():
    # torchvision's meta "_ops" for ConvNeXt-T: 4.456 GFLOPs (multiply-accumulates of the convs and the linear)
    assert round(count(mgcompile.expand(mgcompile.model_spec("convnext_tiny"))).macs / 1e9, 3) == 4.456


def _torchvision_reduced(channels, blocks, num_classes, rate=0.1):
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt

    setting = [CNBlockConfig(c, nxt, n) for c, nxt, n in zip(channels, list(channels[1:]) + [None], blocks)]
    return ConvNeXt(setting, stochastic_depth_prob=rate, num_classes=num_classes)


def _copy_torchvision(ours: torch.nn.Module, tv: torch.nn.Module, channels, blocks) -> None:
    """Load torchvision's weights into the IR-built module, name by name (Linear -> 1x1 conv)."""
    mods = dict(ours.named_modules())
    pairs = [("stem.conv", tv.features[0][0]), ("stem.norm", tv.features[0][1]),
             ("head.norm", tv.classifier[0]), ("head.fc", tv.classifier[2])]
    for s in range(len(channels)):
        stage = tv.features[1 + 2 * s]
        if s > 0:
            down = tv.features[2 * s]
            pairs += [(f"stage{s + 1}.downsample.norm", down[0]), (f"stage{s + 1}.downsample.conv", down[1])]
        for b in range(blocks[s]):
            blk, name = stage[b], f"stage{s + 1}.block{b}"
            pairs += [(f"{name}.dwconv", blk.block[0]), (f"{name}.norm", blk.block[2]),
                      (f"{name}.pwconv1", blk.block[3]), (f"{name}.pwconv2", blk.block[5])]
            mods[f"{name}.layer_scale"].gamma.data.copy_(blk.layer_scale.data)
            p = blk.stochastic_depth.p
            if p > 0:
                assert mods[f"{name}.drop_path"].p == pytest.approx(p), name
            else:
                assert f"{name}.drop_path" not in mods, name
    for ours_name, theirs in pairs:
        mine = mods[ours_name]
        mine.weight.data.copy_(theirs.weight.data.reshape(mine.weight.shape))
        mine.bias.data.copy_(theirs.bias.data)
        if hasattr(theirs, "eps"):
            assert mine.eps == theirs.eps, ours_name
    assert sum(p.numel() for p in ours.parameters()) == sum(p.numel() for p in tv.parameters())


def test_reduced_base_computes_torchvision_convnext():
    """Same layers in the same order (stem, blocks, downsampling, pool -> norm -> fc), same stochastic depth rates."""
    channels, blocks = (16, 32, 64), (2, 1, 2)
    spec = mgcompile.model_spec("convnext_tiny", channels=channels, blocks=blocks, input_size=(32, 32), num_classes=10)
    ours = mgcompile.build(mgcompile.expand(spec)).eval()
    torch.manual_seed(0)
    tv = _torchvision_reduced(channels, blocks, 10).eval()
    with torch.no_grad():  # a layer scale of 1e-6 would hide the blocks: make them count
        for m in tv.modules():
            if hasattr(m, "layer_scale"):
                m.layer_scale.uniform_(0.5, 1.5)
            if isinstance(m, torch.nn.LayerNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
    _copy_torchvision(ours, tv, channels, blocks)
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(ours(x), tv(x), rtol=1e-4, atol=1e-5)


def test_width_mult_scales_stage_widths():
    spec = mgcompile.model_spec("convnext_tiny", width_mult=0.5)
    graph = mgcompile.expand(spec)
    assert graph.attrs("stem.conv")["out_channels"] == 48
    assert graph.attrs("head.fc")["in_features"] == 384


@pytest.mark.parametrize("change, field", [({"stem": "cifar"}, "stem"), ({"activation": "pre"}, "activation"),
                                           ({"variant": "huge"}, "variant"), ({"stem_channels": 64}, "stem_channels")])
def test_spec_errors_name_the_field(change, field):
    with pytest.raises(SpecError, match=f"field '{field}'"):
        mgcompile.model_spec("convnext_tiny", **change)


def test_reduced_mg_convnext_lowers_trains_and_exports(family_checks):
    spec = mgcompile.model_spec("convnext_tiny", channels=(32, 64), blocks=(1, 1), input_size=(32, 32),
                                num_classes=10, group_size=8, coarsest=16, only_profitable=True)
    family_checks.mg_lowers_trains_and_exports(spec)


def test_full_size_mg_convnext_tiny_has_fewer_params():
    base = count(mgcompile.expand(mgcompile.model_spec("convnext_tiny")))
    graph = mgcompile.expand(mgcompile.model_spec("convnext_tiny", group_size=32, coarsest=64, only_profitable=True))
    mg = count(graph)
    assert all(info.status == "cycle" for info in graph.meta_graph.steps.values())
    assert mg.params < base.params and mg.macs < base.macs
    print(f"convnext_tiny MG g32/θ64: {mg.params:,} params, {mg.macs:,} MACs "
          f"(base {base.params:,} / {base.macs:,})")
