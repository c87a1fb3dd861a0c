"""Checkpoints: RNG round trip, atomic verified writes, refusal of bad files and other networks."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from mgcompile.errors import MGCompileError
from mgcompile.train.checkpoint import (capture_rng, check_same_network, read_checkpoint, restore_rng,
                                        save_checkpoint)


def draws() -> tuple:
    return torch.rand(3).tolist(), np.random.rand(3).tolist(), [random.random() for _ in range(3)]


def test_rng_states_survive_a_file_round_trip(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    save_checkpoint(tmp_path / "c.pt", {"model": {}, "rng": capture_rng()})
    expected = draws()
    draws()  # move every generator on
    restore_rng(read_checkpoint(tmp_path / "c.pt")["rng"])
    assert draws() == expected


def test_non_finite_weights_never_replace_a_good_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.ones(2)}, "epoch": 1})
    before = path.read_bytes()
    with pytest.raises(MGCompileError, match="non-finite"):
        save_checkpoint(path, {"model": {"w": torch.tensor([1.0, float("nan")])}, "epoch": 2})
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temp file left


@pytest.mark.parametrize("content, message", [
    (b"not a zip file at all", "is corrupt"),
    (None, "is not an mgcompile training checkpoint"),
])
def test_corrupt_or_foreign_files(tmp_path, content, message):
    path = tmp_path / "checkpoint.pt"
    if content is None:
        torch.save({"state_dict": {}}, path)
    else:
        path.write_bytes(content)
    with pytest.raises(MGCompileError, match=message):
        read_checkpoint(path)


def test_truncated_checkpoint_is_corrupt(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, {"model": {"w": torch.randn(1000)}})
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(MGCompileError, match="corrupt"):
        read_checkpoint(path)


def test_other_network_named_by_field():
    ckpt = {"spec": {"channels": [16, 32], "name": "a"}, "graph": {"nodes": [1]}}
    check_same_network(ckpt, {"channels": [16, 32], "name": "b"}, {"nodes": [1]}, "x")  # a rename is fine
    with pytest.raises(MGCompileError, match=r"different network \(channels"):
        check_same_network(ckpt, {"channels": [16, 48], "name": "a"}, {"nodes": [1]}, "x")
    with pytest.raises(MGCompileError, match="IR differs"):
        check_same_network(ckpt, {"channels": [16, 32]}, {"nodes": [2]}, "x")
