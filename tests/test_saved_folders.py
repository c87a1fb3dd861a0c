"""Folders written by mgcompile 0.1.0 (before step bodies) still load, audit, export and re-convert.

The fixtures were written by commit a4f8e54 (``convert cifar_resnet --channels 16,32 --blocks 1,1
--input-size 16,16 -g 8 -c 16`` and ``convert user_nets:make_sequential -g 8 -c 16 --input-size 32,32``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import mgcompile
from mgcompile.cli import main
from mgcompile.provenance import written_by_mgcompile

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.mark.parametrize("folder, shape", [("v0_1_0_spec_folder", (3, 16, 16)), ("v0_1_0_module_folder", (3, 32, 32))])
def test_an_old_folder_loads_with_its_weights_and_audits_the_same(folder, shape):
    path = FIXTURES / folder
    model = mgcompile.load(path)
    saved = torch.load(path / "model.pt", weights_only=True)["state_dict"]
    assert model.state_dict().keys() == saved.keys()
    assert all(torch.equal(model.state_dict()[k], saved[k]) for k in saved)
    assert model.eval()(torch.zeros(2, *shape)).shape == (2, 10)
    old = json.loads((path / "audit.json").read_text())
    result = CliRunner().invoke(main, ["--quiet", "audit", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["params"] == old["params"]
    for name in ("audit.json", "graph.json", "model.pt"):  # legacy files are recognised as mgcompile's
        assert written_by_mgcompile(path / name), name


def test_an_old_spec_file_builds_the_same_network_today(tmp_path):
    old = FIXTURES / "v0_1_0_spec_folder"
    out = tmp_path / "again"
    result = CliRunner().invoke(main, ["--quiet", "convert", str(old / "spec.yaml"), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert mgcompile.load(out).state_dict().keys() == mgcompile.load(old).state_dict().keys()
    assert json.loads((out / "audit.json").read_text())["params"] == json.loads((old / "audit.json").read_text())["params"]


def test_converting_into_an_old_folder_replaces_its_files(tmp_path):
    folder = tmp_path / "old"
    shutil.copytree(FIXTURES / "v0_1_0_spec_folder", folder)
    args = ["--quiet", "convert", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "16,16",
            "-g", "8", "-c", "16", "-o", str(folder)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert (folder / "spec.yaml").read_text().startswith("# written by mgcompile")
