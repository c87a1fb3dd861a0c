"""The inference lowering keeps every registry model's function (rel. <= 1e-4), in both transfer forms."""

from __future__ import annotations

import pytest
import torch

import mgcompile
from mgcompile.backends.inference import lower_for_inference, passes_report
from mgcompile.errors import NothingConverted
from mgcompile.registry import list_models

NAMES = sorted(e.name for e in list_models())
DEEP = {"resnet101", "resnet152"}  # deeper members of a family exercise no other code path: make test-full


def _mg_or_base(name: str) -> mgcompile.Spec:
    """The registry model's MG version at g32/θ64 (its base where no cycle pays), at 32x32 for speed."""
    size = (32, 32)
    try:
        spec = mgcompile.model_spec(name, group_size=32, coarsest=64, input_size=size)
        mgcompile.expand(spec)
        return spec
    except (NothingConverted, mgcompile.MGCompileError):
        return mgcompile.model_spec(name, input_size=size)


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.full) if n in DEEP else n for n in NAMES])
def test_every_registry_model_keeps_its_function_when_lowered_for_inference(name, with_random_bn):
    spec = _mg_or_base(name)
    model = with_random_bn(mgcompile.build(spec))
    x = torch.randn(2, *mgcompile.expand(spec).input_shape())
    with torch.no_grad():
        ref = model(x)
        for form in ("gather", "dense"):
            lowered = lower_for_inference(model, transfers=form)
            out = lowered(x)
            assert (out - ref).abs().max() <= 1e-4 * ref.abs().max(), (name, form)
            assert not lowered.mg_graph.nodes("batchnorm")  # every BN of these networks follows a conv or P
            assert not lowered.training


def test_lowering_reports_what_each_pass_changed_and_leaves_the_module_alone(with_random_bn):
    model = with_random_bn(mgcompile.build(mgcompile.model_spec("mg_resnet34_g32c64", input_size=(64, 64))))
    keys = set(model.state_dict())
    report = {p["pass"]: p["changed"] for p in passes_report(lower_for_inference(model, transfers="dense"))}
    assert report["fold_batchnorm"] == len(model.mg_graph.nodes("batchnorm")) == 159
    assert report["fold_permutations"] > 0 and report["densify_transfers"] > 0
    assert set(model.state_dict()) == keys and len(model.mg_graph.nodes("batchnorm")) == 159  # untouched


def test_build_and_load_offer_the_folded_form(tmp_path, with_random_bn):
    spec = mgcompile.model_spec("mg_cifar_resnet_g8c16", input_size=(16, 16))
    model = with_random_bn(mgcompile.build(spec))
    path = mgcompile.save(model, tmp_path / "m")
    folded = mgcompile.load(path, fold_bn=True)
    x = torch.randn(3, 3, 16, 16)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), rtol=1e-4, atol=1e-5)
    assert not folded.mg_graph.nodes("batchnorm") and not folded.training
    fresh = mgcompile.build(spec, fold_bn=True)
    assert not fresh.mg_graph.nodes("batchnorm") and set(fresh.state_dict()) == set(folded.state_dict())


def test_lowering_twice_is_the_same_module_and_an_already_folded_model_exports(tmp_path):
    from mgcompile.exporters.export import export_model

    spec = mgcompile.model_spec("mg_cifar_resnet_g8c16", input_size=(16, 16))
    folded = mgcompile.build(spec, fold_bn=True)
    assert lower_for_inference(folded) is folded
    report = export_model(folded, (3, 16, 16), tmp_path / "f.onnx", opset=17)
    assert report["verification"]["ok"]
