"""MGParams is the one MG record: spec files, CLI flags, module-route keys, per-step overrides, export metadata."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

import mgcompile
from mgcompile.api import build, expand
from mgcompile.cli import main
from mgcompile.multigrid import MGParams, StepOverride, StepOverrides
from mgcompile.passes.count import count
from mgcompile.spec import Spec

FRONTENDS = Path(__file__).parent / "frontends"
TINY = dict(channels=(16, 32, 64), blocks=(2, 2, 2), input_size=(16, 16), group_size=8, coarsest=16)


def _params(model, prefix: str) -> int:
    return sum(p.numel() for n, p in model.named_parameters() if n.startswith(prefix + "."))


def test_flat_views_and_the_nested_record_are_one_spec():
    spec = mgcompile.model_spec("cifar_resnet", group_size=8, coarsest=16, transition="keep")
    assert spec.multigrid == MGParams(group_size=8, coarsest=16, transition="keep")
    assert (spec.group_size, spec.coarsest, spec.transition, spec.cycle) == (8, 16, "keep", "multiplicative")
    assert spec == Spec(**{**spec.base().to_dict(), "multigrid": spec.multigrid, "ignored_layers": ()})
    assert spec.replace(group_size=16, coarsest=32).multigrid == MGParams(group_size=16, coarsest=32, transition="keep")
    assert Spec(transition="paper").multigrid is None and Spec().group_size is None
    assert spec.mg.seed == spec.seed == 0 and spec.replace(seed=3).mg.seed == 3  # the MG seed defaults to Spec.seed


def test_spec_file_format_3_nests_the_record_and_old_flat_files_build_the_same_network(tmp_path):
    spec = mgcompile.model_spec("cifar_resnet", **TINY)
    data = yaml.safe_load(spec.to_yaml())
    assert data["version"] == 3 and data["multigrid"]["group_size"] == 8 and "group_size" not in data
    assert Spec.from_dict(data) == spec
    flat = {k: v for k, v in data.items() if k not in ("multigrid", "step_overrides")}
    flat.update(version=2, **{k: v for k, v in data["multigrid"].items() if k != "seed"})
    old = Spec.from_dict(flat)
    assert old.version == 2 and old.multigrid == spec.multigrid
    assert Spec.from_dict(old.to_dict()) == old and "group_size" in old.to_dict()  # a flat file writes back flat
    assert count(expand(old)).params == count(expand(spec)).params


def test_a_step_overridden_base_builds_as_its_base_step_like_a_selector():
    spec = mgcompile.model_spec("cifar_resnet", **TINY)
    over = spec.replace(step_overrides={"stage3.block1": "base"})
    assert Spec.from_dict(over.to_dict()) == over and over.to_dict()["step_overrides"] == {"stage3.block1": "base"}
    g = expand(over)
    assert g.meta_graph.steps["stage3.block1"].status == "skipped"
    ignored = spec.replace(ignored_layers=("stage3.block1",))
    assert count(g).params == count(expand(ignored)).params > count(expand(spec)).params  # a base step costs more
    both = spec.replace(ignored_layers=("stage3.block1",), step_overrides={"stage3.block1": {"coarsest": 32}})
    assert count(expand(both)).params == count(g).params  # a step a selector picks is base, whatever its override


def test_a_step_overridden_with_its_own_coarsest_is_planned_with_that_theta():
    spec = mgcompile.model_spec("cifar_resnet", **TINY)
    over = spec.replace(step_overrides={"stage3.block1": {"coarsest": 32}})
    info = expand(over).meta_graph.steps["stage3.block1"]
    assert (info.status, info.fine, info.coarsest) == ("cycle", [64, 32], 16)
    assert expand(spec).meta_graph.steps["stage3.block1"].fine == [64, 32, 16]
    # independent count: the network at θ=16 with that one step's parameters (torch numel) as built at θ=32
    at16, at32 = build(spec), build(spec.replace(coarsest=32))
    expected = (sum(p.numel() for p in at16.parameters()) - _params(at16, "stage3.block1")
                + _params(at32, "stage3.block1"))
    assert count(expand(over)).params == sum(p.numel() for p in build(over).parameters()) == expected


def test_step_overrides_validate():
    with pytest.raises(mgcompile.SpecError, match="must be 'base' or"):
        StepOverrides.of({"stage1.block0": "cycle"})
    with pytest.raises(mgcompile.SpecError, match="need 'group_size'"):
        Spec(step_overrides={"stage1.block0": "base"})
    assert StepOverrides.of({"b": "base", "a": {"coarsest": 8}}).get("a") == StepOverride(coarsest=8)


def test_the_conversion_record_carries_the_options_and_overrides_and_rebuilds_the_network():
    import torch
    import torchvision

    from mgcompile.conversion import convert_with
    from mgcompile.multigrid import ConversionOptions

    model = torchvision.models.resnet18(num_classes=10)
    x = torch.randn(1, 3, 32, 32)
    plain = mgcompile.convert(model, group_size=16, coarsest=32, example_input=x)
    options = ConversionOptions(ignored_layers=("layer4.*",), step_overrides={"layer1.1": "base", "layer4.1": {"coarsest": 64},
                                                                               "layer3.1": {"coarsest": 64}})
    conv = convert_with(model, MGParams(group_size=16, coarsest=32), options, example_input=x)
    rows = {r["block"]: r for r in conv.mg_conversion["blocks"]}
    assert rows["layer1.1"]["status"] == "kept" and "overridden: base" in rows["layer1.1"]["reason"]
    assert rows["layer4.1"]["status"] == "kept" and "ignored pattern" in rows["layer4.1"]["reason"]
    assert conv.mg_graph.meta_graph.steps["layer3.1"].fine == [256, 128, 64]
    assert plain.mg_graph.meta_graph.steps["layer3.1"].fine == [256, 128, 64, 32]
    record = conv.mg_conversion
    assert record["options"]["step_overrides"] == {"layer1.1": "base", "layer3.1": {"coarsest": 64},
                                                   "layer4.1": {"coarsest": 64}}
    again = convert_with(model, MGParams.from_meta(record["multigrid"]), ConversionOptions.from_dict(record["options"]),
                         example_input=x)
    assert again.mg_conversion["params"] == record["params"] != plain.mg_conversion["params"]


def test_uneven_groups_error_names_the_stage_level_and_width(tmp_path):
    result = CliRunner().invoke(main, ["convert", "regnet_x_400mf", "-g", "32", "--uneven-groups", "error",
                                       "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "Error: group_size 32 does not divide the 80 channels of stage3 level1; choose a group size that divides "
        "every fine width (160, 80) or set uneven_groups: floor")


@pytest.mark.parametrize("args", [
    ["cifar_resnet", "--channels", "16,32", "--blocks", "1,1", "--input-size", "16,16", "-g", "8", "-c", "16"],
    ["user_nets:make_sequential", "-g", "8", "-c", "16", "--input-size", "32,32"],
], ids=["spec", "module"])
def test_export_metadata_carries_the_resolved_mg_record(tmp_path, monkeypatch, args):
    import onnx

    monkeypatch.syspath_prepend(str(FRONTENDS))
    out = tmp_path / "m.onnx"
    result = CliRunner().invoke(main, ["export", *args, "--no-verify", "-o", str(out)])
    assert result.exit_code == 0, result.output
    meta = {p.key: p.value for p in onnx.load(str(out), load_external_data=False).metadata_props}
    record = json.loads(meta["mgcompile_multigrid"])
    assert (record["group_size"], record["theta"], record["nnz"], record["seed"]) == (8, 16, 8, 0)
    # resolved: the family's default on the spec route; a module of no known family leaves it to each step's kind
    assert record["uneven_groups"] == ("error" if args[0] == "cifar_resnet" else None)
    assert MGParams.from_meta(record).to_meta() == record


NEW_FIELD = r'''
import dataclasses, json, sys
import mgcompile.multigrid as m

New = dataclasses.make_dataclass("MGParams", [("smoothing_steps", int, dataclasses.field(
    default=0, metadata=m._cli("Smoothing steps per level (a test field).", least=0)))], bases=(m.MGParams,), frozen=True)
m.MGParams, m.FIELD_NAMES = New, tuple(f.name for f in dataclasses.fields(New))

import yaml
from click.testing import CliRunner
import mgcompile
from mgcompile.api import expand
from mgcompile.cli import main
from mgcompile.refs import resolve
from mgcompile.spec import Spec

assert "--smoothing-steps" in CliRunner().invoke(main, ["audit", "--help"]).output
spec = mgcompile.model_spec("cifar_resnet", channels=(16, 32), blocks=(1, 1), input_size=(16, 16), group_size=8,
                            coarsest=16, smoothing_steps=2)
assert spec.smoothing_steps == 2 and Spec.from_dict(yaml.safe_load(spec.to_yaml())) == spec
assert expand(spec).meta_graph.multigrid.smoothing_steps == 2
out = CliRunner().invoke(main, ["--quiet", "audit", "cifar_resnet", "--channels", "16,32", "--blocks", "1,1",
                                "--input-size", "16,16", "-g", "8", "-c", "16", "--smoothing-steps", "3", "--json"])
assert out.exit_code == 0, out.output
assert json.loads(out.stdout)["spec"]["multigrid"]["smoothing_steps"] == 3
r = resolve("user_nets:make_sequential", group_size=8, coarsest=16, smoothing_steps=4, input_size=(32, 32))
assert r.report["multigrid"]["smoothing_steps"] == 4 and r.graph.meta_graph.multigrid.smoothing_steps == 4
print("ok")
'''


def test_a_new_mg_field_reaches_the_cli_the_spec_file_and_the_graph_meta():
    """A field added to MGParams alone (here by a subclass installed before mgcompile's other modules load)."""
    result = subprocess.run([sys.executable, "-c", NEW_FIELD], capture_output=True, text=True, timeout=600,
                            env={**__import__("os").environ, "PYTHONPATH": str(FRONTENDS)})
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-3000:]
