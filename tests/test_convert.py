"""mgcompile.convert on torchvision and hand-written modules; the convert CLI on modules."""

from __future__ import annotations

import importlib.util
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
from click.testing import CliRunner

import mgcompile
from mgcompile.cli import main
from mgcompile.errors import MGCompileError, NothingConverted

_spec = importlib.util.spec_from_file_location("user_nets", Path(__file__).parent / "frontends" / "user_nets.py")
user_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(user_nets)
X32 = torch.randn(1, 3, 32, 32)


def numel(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_torchvision_resnet34_matches_the_mg_resnet34_spec():
    converted = mgcompile.convert(torchvision.models.resnet34(), group_size=32, example_input=X32)
    core = mgcompile.build(mgcompile.model_spec("mg_resnet34_g32c64"))
    assert numel(converted) == numel(core)
    rep = converted.mg_conversion
    assert (rep["converted"], rep["transition"], rep["kept"], rep["skipped"]) == (13, 3, 0, 0)
    assert rep["params"] == numel(converted)


def test_mobilenet_v2_counts_against_the_paper():
    model = torchvision.models.mobilenet_v2()
    converted = mgcompile.convert(model, group_size=32, coarsest=64, example_input=X32)
    rep = converted.mg_conversion
    assert rep["paper"]["params_m"] == 3.0 and rep["params"] == numel(converted)
    assert 3.0e6 < rep["params"] < 3.2e6  # public reconstructions land near 3.08M
    assert rep["converted"] == 7  # blocks at 64, 96, 160 wide; 24/32 are narrower than θ
    # Depth-wise convs are unchanged; expand/project 1x1s are grouped on fine levels.
    g = converted.mg_graph
    assert g.attrs("features.8.level0.conv1")["groups"] == 2 and g.attrs("features.8.level1.conv1")["groups"] == 1
    assert g.attrs("features.8.level0.conv2")["groups"] == 384


# Reduced size for CI: deep bottleneck nets use a larger θ (fewer levels) and convert their first stages only.
BOTTLENECK = {"coarsest": 256, "ignored_layers": ("layer3.*", "layer4.*")}
TORCHVISION = {"resnet18": {}, "resnet34": {}, "resnet50": BOTTLENECK, "resnet101": BOTTLENECK,
               "resnet152": BOTTLENECK, "wide_resnet50_2": BOTTLENECK, "resnext50_32x4d": BOTTLENECK,
               "mobilenet_v2": {}}


# Deeper members of a family exercise no other code path: the full matrix (make test-full) runs them.
DEEP = {"resnet101", "resnet152", "wide_resnet50_2"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.full) if n in DEEP else n for n in sorted(TORCHVISION)])
def test_every_torchvision_model_converts_runs_and_trains(name, assert_trains, fixed_batch):
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=10)
    options = {"group_size": 16, "coarsest": 32, **TORCHVISION[name]}
    converted = mgcompile.convert(model, example_input=X32, **options)
    assert converted.mg_conversion["converted"] > 0
    x, y = fixed_batch((4, 3, 32, 32), 10)  # BatchNorm over 2 samples of a 1x1 map has no gradient: use 4
    assert converted(x).shape == (4, 10)
    assert_trains(converted, x, y)


def test_a_network_with_no_convertible_step_is_an_error_that_carries_the_report():
    model = torchvision.models.mobilenet_v3_small(num_classes=10)  # at g32/θ64 no cycle pays (SE stays dense)
    with pytest.raises(NothingConverted, match="no residual step of .* became an MG cycle") as info:
        mgcompile.convert(model, group_size=32, coarsest=64, example_input=X32)
    rows = info.value.report["blocks"]
    assert info.value.report["multigrid"]["group_size"] == 32 and len(rows) == 6
    assert {r["status"] for r in rows} == {"kept"}
    assert sum("would not pay" in r["reason"] for r in rows) == 2 and sum("< θ=64" in r["reason"] for r in rows) == 4


def test_convert_with_nothing_to_convert_raises_with_reasons():
    with pytest.raises(NothingConverted) as info:  # the CLI rejects -g 24 too: 24 divides no level of resnet18
        mgcompile.convert(torchvision.models.resnet18(), group_size=24, example_input=X32)
    rows = info.value.report["blocks"]
    assert rows and all(r["status"] != "converted" for r in rows)
    assert "does not divide" in str(info.value)


def test_the_training_check_fails_a_wrong_backward_and_a_cut_off_layer(assert_trains, fixed_batch):
    """The check is meaningful: it rejects what a broken lowering would produce."""

    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 1.0

        @staticmethod
        def backward(ctx, g):
            return -g  # a sign error in the backward

    class Net(torch.nn.Module):
        def __init__(self, broken: str | None) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
            self.unused = torch.nn.Linear(8, 8)
            self.fc = torch.nn.Linear(8, 10)
            self.broken = broken

        def forward(self, x):
            h = self.conv(x).relu().mean((2, 3))
            if self.broken == "sign":
                h = WrongGrad.apply(h)
            if self.broken != "cut":
                h = h + self.unused(h)
            return self.fc(h)

    x, y = fixed_batch((4, 3, 8, 8), 10)
    assert_trains(Net(None), x, y)
    with pytest.raises(AssertionError, match="disagrees with the forward"):
        assert_trains(Net("sign"), x, y)
    with pytest.raises(AssertionError, match="get no gradient"):
        assert_trains(Net("cut"), x, y)


def _copied_equal(original, converted, source):
    a, b = original.get_submodule(source).state_dict(), converted.get_submodule(source).state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("make,blocks", [(user_nets.FunctionalNet, ["blocks.0", "blocks.1"]),
                                         (user_nets.SequentialNet, ["features.3", "features.4"]),
                                         (user_nets.BottleneckNet, None)])
def test_user_modules_convert_and_keep_their_stems_and_heads(make, blocks):
    model = make().eval()
    converted = mgcompile.convert(model, group_size=8, coarsest=16, example_input=X32)
    rep = converted.mg_conversion
    assert rep["converted"] == (len(blocks) if blocks else 1)
    if blocks:
        assert [r["block"] for r in rep["blocks"]] == blocks
    assert rep["layers_kept"] and all(_copied_equal(model, converted, s) for s in rep["layers_kept"])
    assert converted(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_unknown_user_layer_survives_untouched():
    model = user_nets.BottleneckNet().eval()
    converted = mgcompile.convert(model, group_size=8, coarsest=16, example_input=X32).eval()
    assert converted.mg_conversion["opaque"] == ["scale"]
    torch.testing.assert_close(converted.scale.gamma, model.scale.gamma)
    h = torch.randn(2, 64, 8, 8)
    torch.testing.assert_close(converted.scale(h), model.scale(h))


def test_nothing_convertible_is_reported_with_reasons():
    with pytest.raises(NothingConverted, match="the network has no residual sum"):
        mgcompile.convert(user_nets.PlainNet(), group_size=8, example_input=X32)
    # 50-wide blocks with group size 16: 3 groups cannot split 50 channels.
    with pytest.raises(NothingConverted) as odd:
        mgcompile.convert(user_nets.FunctionalNet(c=50), group_size=16, coarsest=50, example_input=X32)
    rows = odd.value.report["blocks"]
    assert [r["status"] for r in rows] == ["skipped", "skipped"] and "does not divide" in rows[0]["reason"]
    with pytest.raises(NothingConverted) as narrow:
        mgcompile.convert(user_nets.FunctionalNet(), group_size=8, coarsest=16, min_channels=64,
                          ignored_layers=("blocks.1",), example_input=X32)
    reasons = [r["reason"] for r in narrow.value.report["blocks"]]
    assert "min_channels=64" in reasons[0] and "ignored pattern" in reasons[1]
    assert "min_channels=64" in str(narrow.value) and "ignored pattern" in str(narrow.value)


def test_cli_exits_2_and_writes_nothing_without_convertible_blocks(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "frontends"))
    out = tmp_path / "out"
    r = CliRunner().invoke(main, ["convert", "user_nets:make_plain", "-g", "8", "--input-size", "32,32", "-o", str(out)])
    assert r.exit_code == 2 and "no residual step" in r.output
    assert not out.exists() and not list(tmp_path.iterdir())
    r = CliRunner().invoke(main, ["convert", "user_nets:make_sequential", "-g", "8", "-c", "16", "--input-size",
                                  "32,32", "--ignored-layers", "features.4", "-o", str(out)])
    assert r.exit_code == 0, r.output
    assert {p.name for p in out.iterdir()} == {"audit.json", "conversion.json", "graph.json", "model.pt"}
    assert "features.4" in r.output and "ignored pattern" in r.output


def test_save_load_round_trip(tmp_path):
    converted = mgcompile.convert(torchvision.models.resnet18(num_classes=10), group_size=16, coarsest=32,
                                  example_input=X32).eval()
    path = mgcompile.save(converted, tmp_path / "m")
    loaded = mgcompile.load(path).eval()
    torch.testing.assert_close(loaded(X32), converted(X32))


def test_opaque_user_layer_records_its_import_path(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "mylayers.py").write_text(textwrap.dedent('''
        import torch
        from torch import nn

        class Gain(nn.Module):
            def __init__(self, channels):
                super().__init__()
                self.channels = channels
                self.g = nn.Parameter(torch.full((channels,), 2.0))

            def forward(self, x):
                return x * self.g.view(1, -1, 1, 1).abs()
    '''))
    monkeypatch.syspath_prepend(str(pkg))
    import mylayers

    model = user_nets.FunctionalNet()
    model.stem_bn = torch.nn.Sequential(model.stem_bn, mylayers.Gain(32))
    converted = mgcompile.convert(model, group_size=8, coarsest=16, example_input=X32).eval()
    assert converted.mg_graph.meta_graph.opaque["stem_bn.1"] == {"class": "mylayers:Gain", "kwargs": {"channels": 32}}
    path = mgcompile.save(converted, tmp_path / "saved")
    torch.testing.assert_close(mgcompile.load(path).eval()(X32), converted(X32))
    monkeypatch.delitem(sys.modules, "mylayers")
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(pkg)])
    with pytest.raises(MGCompileError, match="mylayers"):
        mgcompile.load(path)


def test_resnext_converts_at_default_theta_and_keeps_its_cardinality():
    converted = mgcompile.convert(torchvision.models.resnext50_32x4d(num_classes=10), group_size=32, example_input=X32)
    rep = converted.mg_conversion
    assert rep["skipped"] == 0 and rep["converted"] == 12
    g = converted.mg_graph
    # fine level 256 of layer1: groups 256/32 = 8 on the 1x1s, cardinality 32 on the 3x3 (128 inner channels)
    assert g.attrs("layer1.1.level0.conv1")["groups"] == 8 and g.attrs("layer1.1.level0.conv2")["groups"] == 32
    # coarsest level 32 has 16 inner channels: the 3x3 is capped at depth-wise
    assert g.attrs("layer1.1.level3.conv2")["groups"] == 16 and g.attrs("layer1.1.level3.conv1")["groups"] == 1
    assert converted(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_audit_of_a_converted_module_compares_with_the_original(run):
    import json

    res = run("audit", "torchvision:resnet18", "-g", "32", "--input-size", "3,64,64", "--json")
    assert res.exit_code == 0, res.output
    a = json.loads(res.stdout)
    assert a["base"]["params"] == numel(torchvision.models.resnet18())
    assert a["params"] == numel(mgcompile.build(mgcompile.model_spec("mg_resnet18_g32c64")))
    assert 0 < a["ratio"]["params"] < 0.5


def test_saved_conversion_keeps_its_base_for_later_audits(run, tmp_path):
    import json

    out = tmp_path / "tv18"
    assert run("convert", "torchvision:resnet18", "-g", "32", "--input-size", "3,64,64", "-o", str(out)).exit_code == 0
    res = run("audit", str(out), "--compare", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["base"]["params"] == numel(torchvision.models.resnet18())


def test_warm_start_copies_the_blocks_of_a_grouped_base_conv_that_fall_inside_finer_groups():
    from mgcompile.conversion import _copy_diagonal_blocks

    torch.manual_seed(0)
    base = torch.nn.Conv2d(8, 8, 3, groups=2, bias=False)  # cardinality 2
    fine = torch.nn.Conv2d(8, 8, 3, groups=4, bias=False)  # the level's groups: 4
    _copy_diagonal_blocks(base.weight, fine.weight.data, in_channels=8, groups=4)

    def dense(conv: torch.nn.Conv2d) -> torch.Tensor:
        w, g = conv.weight, conv.groups
        out = torch.zeros(8, 8, 3, 3)
        for k in range(g):
            rows, cols = slice(k * 8 // g, (k + 1) * 8 // g), slice(k * 8 // g, (k + 1) * 8 // g)
            out[rows, cols] = w[rows]
        return out

    mask = dense(fine) != 0
    assert torch.equal(dense(fine), torch.where(mask, dense(base), torch.zeros(())))  # the base's weights, masked
    assert int(mask.sum()) == 8 * 2 * 9  # every one of the finer blocks was filled


def test_converting_a_built_network_keeps_its_drop_path():
    spec = mgcompile.model_spec("efficientnet_b0", input_size=(32, 32), num_classes=10)
    built = mgcompile.build(spec)
    from mgcompile.frontends.torch_import import import_module

    g = import_module(built, torch.randn(1, 3, 32, 32)).graph
    assert len(g.nodes("drop_path")) == len(mgcompile.expand(spec).nodes("drop_path")) > 0


def test_an_odd_size_strided_step_becomes_a_transition_that_keeps_its_output_size(tmp_path):
    """fashion-mnist's 28x28 input reaches the last stage at 7x7: its 64->128 strided step (7x7 -> 4x4) becomes a
    transition too, so the module route builds the spec route's network (220,234 parameters, issue 19)."""
    kw = dict(channels=(16, 32, 64, 128), blocks=(2, 3, 3, 3), input_size=(28, 28), in_channels=1, num_classes=10)
    spec_mg = mgcompile.build(mgcompile.expand(mgcompile.model_spec("cifar_resnet", group_size=8, coarsest=16, **kw)))
    base = mgcompile.build(mgcompile.expand(mgcompile.model_spec("cifar_resnet", **kw)))
    mgcompile.save(base, tmp_path / "base.pt")
    from mgcompile.passes.infer_shapes import infer_shapes
    from mgcompile.refs import resolve

    r = resolve(str(tmp_path / "base.pt"), group_size=8, coarsest=16)
    converted = r.model()
    n = sum(p.numel() for p in converted.parameters())
    assert n == sum(p.numel() for p in spec_mg.parameters()) == 220_234
    assert [b["status"] for b in r.report["blocks"] if b["stride"] == 2] == \
        ["transition"] * 3
    shapes = infer_shapes(r.graph)
    pools = [n for n in r.graph.nodes("avgpool") if n.endswith(".transition.pool")]
    assert [tuple(shapes.shape(p))[1:] for p in pools] == [(14, 14), (7, 7), (4, 4)]  # as the strided steps: ceil(H/2)
    # the 7x7 -> 4x4 pool averages the last row and column alone: a constant input stays constant
    pool = r.graph.attrs(pools[-1])
    x = torch.ones(1, 1, 7, 7)
    y = torch.nn.functional.avg_pool2d(x, 2, 2, 0, pool["ceil_mode"], pool["count_include_pad"])
    assert y.shape[-2:] == (4, 4) and torch.equal(y, torch.ones_like(y))
