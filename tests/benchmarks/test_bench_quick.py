"""`benchmarks/bench.py --quick` end to end: real exports, one process per measurement, ratios from the raw numbers."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench.py"


def load_bench():
    """benchmarks/bench.py as a module (it is a script, not part of the package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def test_quick_bench_measures_each_model_in_its_own_process_and_reports_ratios(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--metrics", "ort,eager,train", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((tmp_path / "results.json").read_text())
    pair = info["pairs"]["narrow"]
    tuned = pair["latency_aware"]["MG fast"]  # the latency-aware variant: slow cycles left base steps
    assert [t["step"] for t in tuned["steps"]] == ["stage1.block0", "stage2.block0"]
    assert all(t["keep_cycle"] == (t["ratio"] < 1) for t in tuned["steps"])
    if any(t["keep_cycle"] for t in tuned["steps"]):  # (timed on this machine: either outcome is possible)
        assert pair["models"]["MG fast"]["ignored_layers"] == [t["step"] for t in tuned["steps"] if not t["keep_cycle"]]
        assert "MG fast" in pair["raw"]
    else:  # no cycle pays: the variant would be the base network and is not measured
        assert "MG fast" not in pair["raw"] and "no cycle is faster" in done.stderr
    assert {"base", "MG"} <= set(pair["raw"]) and pair["counts"]["MG"]["params"] < pair["counts"]["base"]["params"]
    r = pair["ratios"]["MG"]
    for key in ("ort_b1", "ort_b8", "eager_b1", "eager_b8", "train"):
        assert r[key] > 0
    raw = pair["raw"]
    want = statistics.median(m["8"] / b["8"] for m, b in zip(raw["MG"]["ort"], raw["base"]["ort"]))
    assert r["ort_b8"] == want and r["ort_b8_per_mac"] == want / r["macs"]
    assert "load_1min_start" in info and info["machine"]["cpus"] >= 1 and "MG / base" in done.stdout


def test_a_run_of_some_pairs_keeps_the_other_pairs_of_an_earlier_results_file(tmp_path):
    bench = load_bench()
    path = tmp_path / "results.json"
    path.write_text(json.dumps({"machine": {}, "pairs": {"resnet34": {"old": 1}, "cifar_wide": {"old": 2}}}))
    new = bench.merged(path, {"machine": {"cpus": 2}, "pairs": {"cifar_wide": {"new": 3}}})
    assert new == {"machine": {"cpus": 2}, "pairs": {"resnet34": {"old": 1}, "cifar_wide": {"new": 3}}}
    models = {"base": {"name": "cifar_resnet", "channels": (16, 32)}}  # the same models: other metrics are kept
    path.write_text(json.dumps({"machine": {}, "pairs": {"resnet34": {
        "models": models, "raw": {"base": {"ort": [1], "eager": [2]}}, "ratios": {"MG": {"ort_b1": 0.5, "eager_b1": 0.7}},
        "measured_metrics": {"ort": "then", "eager": "then"}}}}))
    new = bench.merged(path, {"machine": {}, "pairs": {"resnet34": {
        "models": models, "raw": {"base": {"eager": [3]}}, "ratios": {"MG": {"eager_b1": 0.6}},
        "measured_metrics": {"eager": "now"}}}})["pairs"]["resnet34"]
    assert new["raw"] == {"base": {"ort": [1], "eager": [3]}} and new["ratios"] == {"MG": {"ort_b1": 0.5, "eager_b1": 0.6}}
    assert new["measured_metrics"] == {"ort": "then", "eager": "now"}
    other = bench.merged(path, {"machine": {}, "pairs": {"resnet34": {  # another training batch: replaced whole
        "models": models, "train_batch": 32, "raw": {"base": {"eager": [3]}}, "ratios": {}}}})["pairs"]["resnet34"]
    assert other["raw"] == {"base": {"eager": [3]}}
    path.write_text('{"something": "else"}')  # not a bench results file: this run's results replace it
    assert bench.merged(path, {"machine": {}, "pairs": {}}) == {"machine": {}, "pairs": {}}


def test_the_readme_table_shows_every_ratio_of_a_results_file():
    bench = load_bench()
    info = {"pairs": {"resnet34": {"ratios": {"MG sparse": {"params": 0.231, "macs": 0.43, "ort_b1": 0.54,
                                                            "ort_b1_per_mac": 1.2558, "train": 1.14}},
                                   "measured_metrics": {"ort": {"at": "2026-12-02 14:00"},
                                                        "train": {"at": "2026-12-02 14:30"}}}}}
    table = bench.readme_table(info).splitlines()
    assert len(table) == 3 and table[0].startswith("| pair / MG model | params | MACs | ORT b1")
    row = [c.strip() for c in table[2].strip("|").split("|")]
    assert row[:4] == ["resnet34 / MG sparse", "0.231", "0.430", "0.54"] and row[5] == "1.26" and "1.14x" in row
    assert row[-1] == "2026-12-02 14:00, 2026-12-02 14:30"
