"""convert / audit / list through the real CLI (click's runner, same process)."""

from __future__ import annotations

import json

import pytest
import torch

import mgcompile


def test_convert_writes_the_output_folder_and_counts_match_the_module(run, tmp_path):
    out = tmp_path / "mg"
    res = run("convert", "cifar_resnet", "--group-size", "8", "--coarsest", "16", "-o", str(out))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["audit.json", "graph.json", "model.pt", "spec.yaml"]
    audit = json.loads((out / "audit.json").read_text())
    model = mgcompile.load(out)
    assert audit["params"] == sum(p.numel() for p in model.parameters())
    assert mgcompile.Spec.from_file(out / "spec.yaml").group_size == 8
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_audit_json_has_stable_keys_and_equals_module_numel(run):
    res = run("audit", "resnet34", "--group-size", "32", "--json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    for key in ("params", "macs", "input_size", "base"):
        assert key in data
    assert data["input_size"] == [3, 224, 224]
    assert data["base"]["params"] == 21_797_672
    model = mgcompile.build(mgcompile.model_spec("resnet34", group_size=32))
    assert data["params"] == sum(p.numel() for p in model.parameters())


def test_audit_of_a_converted_folder_and_a_spec_file(run, tmp_path):
    out = tmp_path / "m"
    assert run("convert", "mg_cifar_resnet_g8c16", "-o", str(out)).exit_code == 0
    a = json.loads(run("audit", str(out), "--json").output)
    b = json.loads(run("audit", str(out / "spec.yaml"), "--json").output)
    assert a["params"] == b["params"] > 0


def test_list_shows_registry_and_paper_specs(run):
    res = run("list", "--json")
    data = json.loads(res.output)
    assert "resnet34" in data["models"] and "cifar_resnet" in data["models"]
    assert "paper/t2_resnet34" in data["specs"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["audit", "resnet43"], "unknown model 'resnet43'"),
        (["audit", "cifar_resnet", "--group-size", "12"], "group_size 12 does not divide"),
        (["audit", "cifar_resnet", "--cycle", "sideways"], "Invalid value for '--cycle'"),
        (["audit", "missing.yaml"], "does not exist"),
        (["audit", "cifar_resnet", "--channels", "16,x"], "comma-separated integers"),
    ],
)
def test_bad_input_is_a_one_line_error_with_exit_code_2(run, args, message):
    res = run(*args)
    assert res.exit_code == 2
    assert message in res.output
    assert "Traceback" not in res.output


def test_malformed_spec_file_and_flags_on_converted_folder(run, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("arch: resnet\ncycle: sideways\n")
    res = run("convert", str(bad), "-o", str(tmp_path / "never"))
    assert res.exit_code == 2 and "field 'cycle'" in res.output
    assert not (tmp_path / "never").exists()
    out = tmp_path / "m"
    assert run("convert", "mg_cifar_resnet_g8c16", "-o", str(out)).exit_code == 0
    res = run("audit", str(out), "--group-size", "16")
    assert res.exit_code == 2 and "already converted" in res.output


def test_failed_convert_leaves_an_existing_folder_untouched(run, tmp_path):
    out = tmp_path / "m"
    assert run("convert", "mg_cifar_resnet_g8c16", "-o", str(out)).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert run("convert", "cifar_resnet", "--group-size", "12", "-o", str(out)).exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["m"]
