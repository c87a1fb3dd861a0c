"""`benchmarks/accuracy.py --quick` runs end to end: real training processes, a table, JSON and a plot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mgcompile.train.data import FASHION_MNIST_DIR

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "accuracy.py"


def test_quick_accuracy_benchmark_writes_table_json_and_plot(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(tmp_path)], capture_output=True,
                          text=True, timeout=600)
    if not FASHION_MNIST_DIR.is_dir():  # CI installs it (make data); elsewhere the run names the install command
        assert done.returncode != 0 and "apt-get install" in done.stdout + done.stderr
        return
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "results.json").read_text())
    rows = {r["label"]: r for r in info["rows"]}
    assert set(rows) == {"base 8-16", "MG 8-16 g4c8"} and info["machine"]["cpus"] >= 1
    assert rows["MG 8-16 g4c8"]["params"] < rows["base 8-16"]["params"]
    assert all(0.0 <= r["test_top1"] <= 1.0 and r["recipe"]["batch_size"] == 16 for r in rows.values())
    assert info["claims"] and "params ratio" in info["claims"][0]
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "MG 8-16 g4c8" in done.stdout and "wall" in done.stdout
    # --resume keeps finished rows (an interrupted 2-hour run continues), retrains the rest
    (tmp_path / "MG_8-16_g4c8" / "results.json").unlink()
    again = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--resume", "--out", str(tmp_path)],
                           capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr
    rows = {r["label"]: r for r in json.loads((tmp_path / "results.json").read_text())["rows"]}
    assert rows["base 8-16"].get("reused") and not rows["MG 8-16 g4c8"].get("reused")
    assert rows["base 8-16"]["test_top1"] == info["rows"][0]["test_top1"]


def test_claims_use_only_complete_seed_pairs():
    """A run interrupted between a pair's seed-1 rows still states the claim, from the pairs it has."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        from accuracy import claims
    finally:
        sys.path.remove(str(SCRIPT.parent))
    row = lambda label, params, top1: {"label": label, "params": params, "test_top1": top1}  # noqa: E731
    rows = [row("base 16-128", 900, 0.90), row("MG 16-128 g8c16", 200, 0.895), row("base 16-128 (seed 1)", 900, 0.80)]
    (line,) = claims(rows)
    assert "accuracy gap +0.50 points (mean of 1 seed(s))" in line and line.endswith("yes")
    (line,) = claims(rows + [row("MG 16-128 g8c16 (seed 1)", 200, 0.77)])
    assert "+1.75 points (mean of 2 seed(s))" in line and line.endswith("no")
