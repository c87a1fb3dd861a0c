"""Folders written by main at 33688c4 (before issue 18's seams) load and audit exactly as they did.

Written by ``mgcompile convert cifar_resnet --channels 16,32 --blocks 1,1 --input-size 16,16 -g 8 -c 16``,
``mgcompile convert user_nets:make_sequential -g 8 -c 16 --input-size 32,32`` and
``mgcompile train cifar_resnet --channels 8,16 --blocks 1,1 -g 8 -c 16 --data digits --epochs 1 --limit-train 64``
(its checkpoint left out); ``expected_audit.json`` is what ``mgcompile audit FOLDER --json`` printed then.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mgcompile
from mgcompile.cli import main

FIXTURES = Path(__file__).parent / "fixtures"
FOLDERS = {"main_33688c4_spec_folder": (3, 16, 16), "main_33688c4_module_folder": (3, 32, 32),
           "main_33688c4_run_folder": (1, 8, 8)}


@pytest.fixture(autouse=True)
def _user_nets(monkeypatch):
    monkeypatch.syspath_prepend(str(Path(__file__).parent / "frontends"))  # the module folder's source module


@pytest.mark.parametrize("folder", sorted(FOLDERS))
def test_a_folder_from_main_loads_with_its_weights_and_audits_the_same(folder):
    path = FIXTURES / folder
    model = mgcompile.load(path)
    saved = torch.load(path / "model.pt", weights_only=True)["state_dict"]
    assert model.state_dict().keys() == saved.keys()
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    assert model.eval()(torch.zeros(2, *FOLDERS[folder])).shape[0] == 2
    result = CliRunner().invoke(main, ["--quiet", "audit", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == json.loads((path / "expected_audit.json").read_text())
