"""Trained weights in: the weights file forms and their one-line errors (`mgcompile.weights`)."""

from __future__ import annotations

import hashlib
import sys

import pytest
import torch

from mgcompile.errors import MGCompileError
from mgcompile.weights import file_sha256, load_weights, read_state_dict


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

