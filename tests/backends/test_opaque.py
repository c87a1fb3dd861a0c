"""Opaque layers never reload wrong: a rebuild is proven at save time, else the layer is stored as TorchScript;
a saved model carries a reference output that ``export`` checks the reloaded model against (issue 11)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
from click.testing import CliRunner
from torch import nn

import mgcompile
from mgcompile.cli import main
from mgcompile.backends.opaque import rebuild_opaque_modules

_spec = importlib.util.spec_from_file_location("user_nets", Path(__file__).parents[1] / "frontends" / "user_nets.py")
user_nets = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(user_nets)
X = torch.randn(1, 3, 32, 32)


class HiddenArg(nn.Module):
    """Its constructor argument is not stored under its own name: a record would rebuild it with the default."""

    def __init__(self, channels: int, kind: str = "tanh") -> None:
        super().__init__()
        self.channels = channels
        self.fn = torch.sigmoid if kind == "sigmoid" else torch.tanh
        self.scale = nn.Parameter(torch.linspace(0.5, 1.5, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fn(x * self.scale.view(1, -1, 1, 1).abs())


def _net_with(layer: nn.Module) -> nn.Module:
    model = user_nets.FunctionalNet()
    model.stem_bn = nn.Sequential(model.stem_bn, layer)
    return model.eval()


def test_a_layer_that_would_rebuild_wrong_is_stored_as_torchscript_and_reloads_bit_exactly(tmp_path):
    converted = mgcompile.convert(_net_with(HiddenArg(32, kind="sigmoid")), group_size=8, coarsest=16,
                                  example_input=X)
    record = converted.mg_graph.meta_graph.opaque["stem_bn.1"]
    assert record == {"class": f"{HiddenArg.__module__}:HiddenArg", "kwargs": {"channels": 32}}  # 'kind' is lost
    wrong = rebuild_opaque_modules({"stem_bn.1": record})["stem_bn.1"]
    wrong.load_state_dict(converted.get_submodule("stem_bn.1").state_dict())
    h = torch.randn(2, 32, 8, 8)
    assert not torch.allclose(wrong(h), converted.get_submodule("stem_bn.1")(h))  # what load did before: a silently different layer
    path = mgcompile.save(converted, tmp_path / "m")
    payload = torch.load(path, weights_only=True)
    assert list(payload["opaque_scripts"]) == ["stem_bn.1"]
    loaded = mgcompile.load(path)
    assert not loaded.training
    with torch.no_grad():
        assert torch.equal(loaded(X), converted(X))
    again = mgcompile.load(mgcompile.save(loaded, tmp_path / "again"))  # a reloaded script stays a script
    with torch.no_grad():
        assert torch.equal(again(X), converted(X))


def test_a_layer_that_rebuilds_exactly_is_stored_as_its_record(tmp_path):
    converted = mgcompile.convert(_net_with(HiddenArg(32)), group_size=8, coarsest=16, example_input=X)
    path = mgcompile.save(converted, tmp_path / "m")
    assert torch.load(path, weights_only=True)["opaque_scripts"] == {}  # default kind: the record rebuilds it exactly
    with torch.no_grad():
        assert torch.equal(mgcompile.load(path)(X), converted(X))


def test_convert_keeps_the_input_mode_and_load_returns_the_saved_mode(tmp_path):
    train_mode = mgcompile.convert(user_nets.FunctionalNet().train(), group_size=8, coarsest=16, example_input=X)
    assert train_mode.training
    assert mgcompile.load(mgcompile.save(train_mode, tmp_path / "t")).training
    eval_mode = mgcompile.convert(user_nets.FunctionalNet().eval(), group_size=8, coarsest=16, example_input=X)
    assert not eval_mode.training and not mgcompile.load(mgcompile.save(eval_mode, tmp_path / "e")).training


def test_export_fails_when_the_reloaded_model_drifts_from_what_was_saved(tmp_path):
    folder = tmp_path / "conv"
    runner = CliRunner()
    r = runner.invoke(main, ["convert", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "-g", "8", "-c", "16",
                             "--input-size", "16,16", "-o", str(folder)])
    assert r.exit_code == 0, r.output
    ok = runner.invoke(main, ["export", str(folder), "-o", str(tmp_path / "ok.onnx"), "--opset", "17", "--json"])
    assert ok.exit_code == 0, ok.output
    assert "saved-artifact" in ok.output  # the artifact reproduced the stored output too
    payload = torch.load(folder / "model.pt", weights_only=True)
    payload["reference"]["output"] = payload["reference"]["output"] + 0.5  # as if the reload differed
    torch.save(payload, folder / "model.pt")
    bad = runner.invoke(main, ["export", str(folder), "-o", str(tmp_path / "bad.onnx"), "--opset", "17"])
    assert bad.exit_code == 2 and "does not reproduce the output stored when it was saved" in bad.output
    assert not (tmp_path / "bad.onnx").exists()
