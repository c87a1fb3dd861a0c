"""`benchmarks/bench.py --quick` end to end: real exports, one process per measurement, ratios from the raw numbers."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "bench.py"


def test_quick_bench_measures_each_model_in_its_own_process_and_reports_ratios(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--metrics", "ort,eager,train", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    info = json.loads((tmp_path / "results.json").read_text())
    pair = info["pairs"]["narrow"]
    assert set(pair["raw"]) == {"base", "MG"} and pair["counts"]["MG"]["params"] < pair["counts"]["base"]["params"]
    r = pair["ratios"]["MG"]
    for key in ("ort_b1", "ort_b8", "eager_b1", "eager_b8", "train"):
        assert r[key] > 0
    raw = pair["raw"]
    want = statistics.median(m["8"] / b["8"] for m, b in zip(raw["MG"]["ort"], raw["base"]["ort"]))
    assert r["ort_b8"] == want and r["ort_b8_per_mac"] == want / r["macs"]
    assert "load_1min_start" in info and info["machine"]["cpus"] >= 1 and "MG / base" in done.stdout
