"""Latency-aware MG (`convert --latency-aware`): per-step timings decide which cycles stay."""

from __future__ import annotations

import json

import pytest

import mgcompile
from mgcompile.errors import MGCompileError
from mgcompile.latency import StepTiming, latency_aware, variant


def timing(step: str, ratio: float, threshold: float = 1.0) -> StepTiming:
    return StepTiming(step, 1.0, ratio, ratio, ratio < threshold)


def test_the_variant_leaves_exactly_the_slow_cycles_base_steps(tiny_mg_spec):
    timings = [timing("stage1.block0", 1.3), timing("stage2.block0", 0.7), timing("stage3.block0", 1.0)]
    spec = variant(tiny_mg_spec, timings, "ort-cpu")
    assert spec.ignored_layers == ("stage1.block0", "stage3.block0")  # a tie is no gain: the base step stays
    assert spec.name == "mg_cifar_resnet_g8c16_latency_ort_cpu"
    steps = mgcompile.expand(spec).meta_graph.steps
    assert steps["stage2.block0"].status == "cycle"
    assert steps["stage1.block0"].status != "cycle" and steps["stage3.block0"].status != "cycle"
    assert spec.replace(ignored_layers=(), name=tiny_mg_spec.name) == tiny_mg_spec  # nothing else changed
    assert mgcompile.Spec.from_dict(spec.to_dict()) == spec  # an ordinary spec: rebuilt without measuring


def test_no_variant_when_no_cycle_pays(tiny_mg_spec):
    assert variant(tiny_mg_spec, [timing("stage1.block0", 1.1), timing("stage2.block0", 2.0)], "torch") is None


@pytest.mark.parametrize("target", ["torch", "ort-cpu"])
def test_real_timings_of_every_cycle_decide_by_the_threshold(tiny_mg_spec, target):
    spec, timings = latency_aware(tiny_mg_spec, target, rounds=1, repeat=2, threshold=float("inf"))
    assert [t.step for t in timings] == ["stage1.block0", "stage2.block0", "stage3.block0"]
    assert all(t.base_ms > 0 and t.mg_ms > 0 and t.keep_cycle for t in timings)
    assert all(t.ratio == pytest.approx(t.mg_ms / t.base_ms) for t in timings)  # one round: its ratio
    assert spec.ignored_layers == () and spec.name.endswith(f"_latency_{target.replace('-', '_')}")
    none, timings = latency_aware(tiny_mg_spec, target, rounds=1, repeat=1, threshold=0.0)
    assert none is None and not any(t.keep_cycle for t in timings)


def test_bad_requests_are_refused(tiny_mg_spec):
    with pytest.raises(MGCompileError, match="unknown latency target 'gpu'"):
        latency_aware(tiny_mg_spec, "gpu")
    with pytest.raises(MGCompileError, match="needs MG parameters"):
        latency_aware(tiny_mg_spec.base(), "torch")


def test_cli_writes_the_variant_and_its_measurements_or_says_why_not(run, tmp_path):
    out = tmp_path / "fast"
    res = run("convert", "cifar_resnet", "--channels", "16,32,64", "--blocks", "1,1,1", "-g", "8", "-c", "16",
              "--latency-aware", "torch", "-o", str(out))
    assert "per-step latency on torch" in res.output
    if res.exit_code == 2:  # timed on this machine: no cycle may pay
        assert "no MG cycle of cifar_resnet ran faster than its base step on torch" in res.output
        assert not out.exists()
        return
    assert res.exit_code == 0, res.output
    timings = json.loads((out / "latency.json").read_text())
    slow = [t["step"] for t in timings["steps"] if not t["keep_cycle"]]
    spec = mgcompile.Spec.from_file(out / "spec.yaml")
    assert list(spec.ignored_layers) == slow and spec.name.endswith("_latency_torch")
    assert json.loads((out / "audit.json").read_text())["params"] == sum(
        p.numel() for p in mgcompile.build(spec).parameters())


def test_cli_refuses_a_module_route_in_one_line(run, tmp_path):
    res = run("convert", "torchvision:resnet18", "-g", "32", "--latency-aware", "ort-cpu", "-o", str(tmp_path / "x"))
    assert res.exit_code == 2
    assert "--latency-aware works on specs" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "x").exists()
