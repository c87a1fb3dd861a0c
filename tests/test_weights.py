"""Trained weights in (`convert --weights`, `mgcompile.weights`) and the original remembered and rebuilt
(`conversion.json`'s record, `mgcompile.original.load_original`)."""

from __future__ import annotations

import hashlib
import json
import sys

import pytest
import torch
import torchvision
from click.testing import CliRunner

import mgcompile
from mgcompile.cli import main
from mgcompile.errors import MGCompileError
from mgcompile.original import load_original
from mgcompile.weights import file_sha256, load_weights, read_state_dict

MG = ["-g", "8", "-c", "16", "--num-classes", "10", "--input-size", "3,32,32"]


def invoke(*args: str):
    return CliRunner().invoke(main, ["--quiet", *args])


def error_line(*args: str) -> str:
    """The one ``Error:`` line of a refused command (exit 2, nothing else printed)."""
    r = invoke(*args)
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert r.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "), r.output
    return lines[0]


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def perturbed(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Weights no fresh init has: every float tensor moved by a seeded amount (running_var kept positive)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, t in model.state_dict().items():
            if t.is_floating_point():
                t.add_(torch.rand(t.shape, generator=g) * 0.1 if name.endswith("running_var") else
                       torch.randn(t.shape, generator=g) * 0.05)
    return model.eval()


def small_net() -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Flatten(),
                               torch.nn.Linear(4, 2))


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """A trained-looking torchvision resnet18 (10 classes) as a state_dict file, and `convert --weights` of it."""
    root = tmp_path_factory.mktemp("tv")
    file = root / "resnet18.pt"
    torch.save(perturbed(torchvision.models.resnet18(num_classes=10)).state_dict(), file)
    out = root / "mg"
    r = invoke("convert", "torchvision:resnet18", *MG, "--weights", str(file), "-o", str(out))
    assert r.exit_code == 0, r.output
    return file, out


def kept_layers_match(file_state: dict, out) -> list[str]:
    """Assert every kept layer of the converted folder holds the file's tensors; the keys compared."""
    kept = json.loads((out / "conversion.json").read_text())["layers_kept"]
    saved = torch.load(out / "model.pt", weights_only=True)["state_dict"]
    keys = [k for k in file_state if any(k.startswith(layer + ".") for layer in kept)]
    for k in keys:
        assert torch.equal(saved[k], file_state[k]), k
    return keys


def test_read_state_dict_reads_every_file_form(tmp_path):
    from safetensors.torch import save_file

    state = small_net().state_dict()
    forms = {
        "plain.pt": state,
        "ckpt.pth": {"state_dict": state, "epoch": 3},
        "model.pt": {"model": state, "optimizer": {"state": {}, "param_groups": []}},
        "msd.pt": {"model_state_dict": state, "loss": 0.5},
        "ddp.pt": {"module." + k: v for k, v in state.items()},
        "ddp_ckpt.pt": {"state_dict": {"module." + k: v for k, v in state.items()}},
    }
    for name, data in forms.items():
        torch.save(data, tmp_path / name)
    save_file(dict(state), tmp_path / "w.safetensors")
    save_file(dict(state), tmp_path / "renamed.bin")  # a safetensors file under another suffix
    for name in [*forms, "w.safetensors", "renamed.bin"]:
        got = read_state_dict(tmp_path / name)
        assert sorted(got) == sorted(state) and all(torch.equal(got[k], state[k]) for k in state), name
    partly = {"module.a": torch.zeros(1), "b": torch.ones(1)}  # not every key has the prefix: kept as is
    torch.save(partly, tmp_path / "partly.pt")
    assert list(read_state_dict(tmp_path / "partly.pt")) == ["module.a", "b"]


def test_unreadable_weights_files_are_one_line_errors(tmp_path, monkeypatch):
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint at all" * 10)
    torch.save([torch.zeros(1)], tmp_path / "list.pt")
    torch.save({"epoch": 3, "optimizer": {}}, tmp_path / "nostate.pt")
    torch.save(small_net(), tmp_path / "pickled.pt")  # a whole pickled module: weights_only refuses it
    (tmp_path / "bad.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{broken")
    cases = {"missing.pt": "does not exist", ".": "is a folder", "garbage.pt": "is corrupt",
             "list.pt": "holds no state_dict (list", "nostate.pt": "holds no state_dict (a dict with keys epoch",
             "pickled.pt": "holds more than tensors", "bad.safetensors": "not a readable safetensors file"}
    for name, words in cases.items():
        with pytest.raises(MGCompileError) as info:
            read_state_dict(tmp_path / name)
        message = str(info.value)
        assert words in message and str(tmp_path / name) in message and "\n" not in message, message
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)  # not installed
    with pytest.raises(MGCompileError, match="needs the safetensors package.*pip install safetensors"):
        read_state_dict(tmp_path / "bad.safetensors")


def test_load_weights_names_the_first_missing_unexpected_and_misshaped_keys(tmp_path):
    model = small_net()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    state = dict(small_net().state_dict())
    state.pop("1.running_mean")
    state.pop("1.weight")
    state["extra.weight"] = torch.zeros(1)
    state["3.weight"] = torch.zeros(3, 4)
    torch.save(state, tmp_path / "w.pt")
    with pytest.raises(MGCompileError) as info:
        load_weights(model, tmp_path / "w.pt", "--weights")
    message = str(info.value)
    assert "\n" not in message and message.startswith(f"--weights {tmp_path / 'w.pt'} does not fit Sequential")
    assert "2 key(s) missing (first 1.weight)" in message and "1 unexpected (first extra.weight)" in message
    assert "1 mis-shaped (first 3.weight: file (3, 4), model (2, 4))" in message
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing was loaded
    good = perturbed(small_net())
    torch.save(good.state_dict(), tmp_path / "good.pt")
    load_weights(model, tmp_path / "good.pt", "--weights")
    assert all(torch.equal(good.state_dict()[k], v) for k, v in model.state_dict().items())
    assert file_sha256(tmp_path / "good.pt") == sha(tmp_path / "good.pt")


def test_convert_weights_gives_a_torchvision_module_the_files_tensors(converted):
    file, out = converted
    keys = kept_layers_match(torch.load(file, weights_only=True), out)
    assert {"conv1.weight", "bn1.running_var", "fc.weight", "fc.bias"} <= set(keys)
    original = json.loads((out / "conversion.json").read_text())["original"]
    assert original == {"ref": "torchvision:resnet18", "route": "torchvision", "path": None,
                        "weights": str(file.resolve()), "sha256": sha(file), "input_shape": [3, 32, 32],
                        "num_classes": 10, "width_mult": None}
    assert mgcompile.load(out).mg_graph.meta_graph.conversion["original"] == original  # also inside model.pt


def test_convert_weights_gives_a_timm_module_the_files_tensors(tmp_path):
    timm = pytest.importorskip("timm")
    from safetensors.torch import save_file

    file = tmp_path / "resnet10t.safetensors"
    save_file(perturbed(timm.create_model("resnet10t", pretrained=False, num_classes=10)).state_dict(), file)
    out = tmp_path / "mg"
    r = invoke("convert", "timm:resnet10t", *MG, "--weights", str(file), "-o", str(out))
    assert r.exit_code == 0, r.output
    keys = kept_layers_match(read_state_dict(file), out)
    assert {"conv1.0.weight", "fc.weight"} <= set(keys)
    original = json.loads((out / "conversion.json").read_text())["original"]
    assert original["route"] == "timm" and original["sha256"] == sha(file) and original["num_classes"] == 10


def test_a_weights_file_that_does_not_fit_is_one_line_and_writes_nothing(tmp_path):
    state = torchvision.models.resnet18().state_dict()  # 1000 classes where the conversion builds 10
    state.pop("layer1.0.bn1.weight")
    state["extra.bias"] = torch.zeros(2)
    torch.save({"model": state}, tmp_path / "other.pt")
    out = tmp_path / "mg"
    line = error_line("convert", "torchvision:resnet18", *MG, "--weights", str(tmp_path / "other.pt"), "-o", str(out))
    assert "1 key(s) missing (first layer1.0.bn1.weight)" in line and "1 unexpected (first extra.bias)" in line
    assert "2 mis-shaped (first fc.weight: file (1000, 512), model (10, 512))" in line
    assert not out.exists()
    assert "does not exist" in error_line("convert", "torchvision:resnet18", *MG, "--weights",
                                          str(tmp_path / "none.pt"), "-o", str(out))
    assert not out.exists()


def test_weights_on_a_spec_or_a_saved_network_is_a_one_line_error(tmp_path):
    torch.save(small_net().state_dict(), tmp_path / "w.pt")
    line = error_line("convert", "cifar_resnet", "-g", "8", "--weights", str(tmp_path / "w.pt"))
    assert "built from a spec with fresh weights" in line
    # a bare torchvision name of no registry spec takes the module route: the file is loaded (and here misfits)
    assert "does not fit MNASNet" in error_line("convert", "mnasnet0_5", "-g", "8", "--weights", str(tmp_path / "w.pt"))
    run = tmp_path / "run"
    mgcompile.save(mgcompile.build(mgcompile.model_spec("cifar_resnet", channels=(8, 16), blocks=(1, 1),
                                                        input_size=(16, 16))), run)
    line = error_line("convert", str(run), "-g", "4", "--weights", str(tmp_path / "w.pt"))
    assert "holds its own weights" in line


def _run_record(tmp_path):
    from mgcompile.refs import resolve

    run = tmp_path / "run"
    base = perturbed(mgcompile.build(mgcompile.model_spec("cifar_resnet", channels=(8, 16), blocks=(1, 1),
                                                          input_size=(16, 16))))
    mgcompile.save(base, run)
    return run, base, resolve(str(run), group_size=4, coarsest=8).original


def test_load_original_rebuilds_a_converted_run(tmp_path):
    run, base, record = _run_record(tmp_path)
    assert record == {"ref": str(run), "route": "run", "path": str(run.resolve()), "weights": None,
                      "sha256": sha(run / "model.pt"), "input_shape": [3, 16, 16], "num_classes": 10,
                      "width_mult": None}
    original = load_original(record)
    x = torch.randn(2, 3, 16, 16)
    assert not original.training and torch.equal(original(x), base(x))
    assert torch.equal(load_original(None, ref=str(run))(x), base(x))  # --original RUN: needs no weights
    with pytest.raises(MGCompileError, match="holds its own weights; drop --weights"):
        load_original(None, ref=str(run), weights=str(run / "model.pt"))
    torch.save({"trained": True}, run / "other.pt")
    (run / "other.pt").replace(run / "model.pt")  # the run was retrained: its model.pt changed
    with pytest.raises(MGCompileError, match=r"changed since the conversion.*--original REF \[--weights PATH\]"):
        load_original(record)
    with pytest.raises(MGCompileError, match="holds its own weights"):
        load_original(record, weights=str(run / "model.pt"))


def test_load_original_rebuilds_a_module_converted_with_weights(converted, tmp_path):
    file, out = converted
    record = json.loads((out / "conversion.json").read_text())["original"]
    reference = torchvision.models.resnet18(num_classes=10)
    reference.load_state_dict(torch.load(file, weights_only=True))
    x = torch.randn(2, 3, 32, 32)
    assert torch.equal(load_original(record)(x), reference.eval()(x))
    copy = tmp_path / "copy.pt"
    copy.write_bytes(file.read_bytes())
    moved = {**record, "weights": str(copy)}
    assert torch.equal(load_original(moved)(x), reference(x))
    torch.save(perturbed(torchvision.models.resnet18(num_classes=10), seed=2).state_dict(), copy)
    with pytest.raises(MGCompileError, match="changed since the conversion"):
        load_original(moved)
    assert not torch.equal(load_original(moved, weights=str(copy))(x), reference(x))  # an override: no sha check
    explicit = load_original({"num_classes": 10}, ref="torchvision:resnet18", weights=str(file))  # a folder of old
    assert torch.equal(explicit(x), reference(x))
    copy.unlink()
    with pytest.raises(MGCompileError, match="is gone"):
        load_original(moved)


def test_load_original_says_when_it_cannot_reproduce_the_original(tmp_path):
    fix = r"--original REF \[--weights PATH\]"
    with pytest.raises(MGCompileError, match=f"records no original.*{fix}"):
        load_original(None)
    fresh = {"ref": "torchvision:resnet18", "route": "torchvision", "path": None, "weights": None, "sha256": None,
             "input_shape": [3, 32, 32], "num_classes": 10, "width_mult": None}
    with pytest.raises(MGCompileError, match=f"converted without --weights.*{fix}"):
        load_original(fresh)
    with pytest.raises(MGCompileError, match="fresh weights without --weights PATH"):
        load_original(fresh, ref="torchvision:resnet18")
    with pytest.raises(MGCompileError, match="not a network with trained weights"):
        load_original(fresh, ref="cifar_resnet")
