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
    data = json.loads(res.stdout)
    for key in ("params", "macs", "input_size", "base"):
        assert key in data
    assert data["input_size"] == [3, 224, 224]
    assert data["base"]["params"] == 21_797_672
    model = mgcompile.build(mgcompile.model_spec("resnet34", group_size=32))
    assert data["params"] == sum(p.numel() for p in model.parameters())


def test_audit_of_a_converted_folder_and_a_spec_file(run, tmp_path):
    out = tmp_path / "m"
    assert run("convert", "mg_cifar_resnet_g8c16", "-o", str(out)).exit_code == 0
    a = json.loads(run("audit", str(out), "--json").stdout)
    b = json.loads(run("audit", str(out / "spec.yaml"), "--json").stdout)
    assert a["params"] == b["params"] > 0


def test_list_shows_registry_and_paper_specs(run):
    res = run("list", "--json")
    data = json.loads(res.stdout)
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
    assert [line for line in res.output.splitlines() if line.strip()] == [res.output.strip()]


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


@pytest.mark.parametrize("args", [
    ["audit", "cifar_resnet", "-g", "0"],
    ["audit", "cifar_resnet", "--cycle", "sideways"],
    ["audit", "cifar_resnet", "--width-mult", "-1"],
    ["nonsense-command"],
    ["--no-such-flag"],
])
def test_usage_errors_are_one_line(run, args):
    res = run(*args)
    assert res.exit_code == 2
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), res.output


def test_convert_into_a_folder_of_foreign_files_keeps_them(run, tmp_path):
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "important.txt").write_text("keep me")
    res = run("convert", "cifar_resnet", "-g", "8", "--channels", "16,32", "--blocks", "1,1", "-o", str(victim))
    assert res.exit_code == 0, res.output
    assert (victim / "important.txt").read_text() == "keep me" and (victim / "model.pt").is_file()


def test_output_under_a_file_is_a_one_line_error(run, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    res = run("convert", "mg_cifar_resnet_g8c16", "-o", str(blocker / "sub"))
    assert res.exit_code == 2 and "cannot write" in res.output and "Traceback" not in res.output


def test_outputs_get_normal_permissions(run, tmp_path):
    out = tmp_path / "m"
    assert run("convert", "mg_cifar_resnet_g8c16", "-o", str(out)).exit_code == 0
    assert (out.stat().st_mode & 0o777) == (0o777 & ~_umask())
    assert ((out / "model.pt").stat().st_mode & 0o777) == (0o666 & ~_umask())


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_empty_spec_file_is_an_error(run, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    res = run("audit", str(empty))
    assert res.exit_code == 2 and "empty or not a mapping" in res.output


def test_min_channels_and_ignored_layers_select_steps_on_the_spec_route(run, tmp_path):
    res = run("convert", "cifar_resnet", "-g", "8", "--channels", "16,32,64", "--blocks", "1,1,1",
              "--activation", "pre", "--min-channels", "32", "--ignored-layers", "stage3.*", "-o", str(tmp_path / "s"))
    assert res.exit_code == 0, res.output
    steps = json.loads((tmp_path / "s" / "audit.json").read_text())["steps"]
    assert steps["stage1.block0"]["status"] == "skipped" and "min_channels=32" in steps["stage1.block0"]["reason"]
    assert steps["stage2.block0"]["status"] == "cycle"
    assert steps["stage3.block0"]["status"] == "skipped" and "stage3.*" in steps["stage3.block0"]["reason"]
    spec = mgcompile.Spec.from_file(tmp_path / "s" / "spec.yaml")
    assert spec.min_channels == 32 and spec.ignored_layers == ("stage3.*",)  # the selection round-trips


def test_paper_row_is_matched_on_the_real_architecture(run):
    matched = json.loads(run("audit", "cifar_resnet", "--channels", "64,128,256,512", "--blocks", "3,5,7,4",
                             "--num-classes", "100", "-g", "32", "-c", "64", "--json").stdout)
    assert matched["paper"]["spec"] == "t1_c100_mg_64-512_g32c64" and abs(matched["paper"]["gap_pct"]) < 3
    narrowed = json.loads(run("audit", "cifar_resnet", "-g", "8", "--channels", "16,32", "--blocks", "1,1",
                              "--json").stdout)
    assert "paper" not in narrowed


def test_mg_name_follows_overridden_flags(run, tmp_path):
    assert run("convert", "mg_cifar_resnet_g8c16", "-g", "16", "-o", str(tmp_path / "n")).exit_code == 0
    assert mgcompile.Spec.from_file(tmp_path / "n" / "spec.yaml").name == "mg_cifar_resnet_g16c16"
