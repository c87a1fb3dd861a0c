"""`benchmarks/distill.py --quick` runs end to end: a real base run, its conversions, fine-tunes with and without
the teacher, each its own mgcompile process; a second run replaces only the folders it wrote."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from mgcompile.train.data import FASHION_MNIST_DIR

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "distill.py"


def run(out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), "--quick", "--out", str(out)], capture_output=True, text=True,
                          timeout=900)


def test_quick_distill_benchmark_reports_every_variant_and_keeps_foreign_files(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    done = run(tmp_path)
    if not FASHION_MNIST_DIR.is_dir():
        assert done.returncode != 0 and "apt-get install" in done.stdout + done.stderr
        return
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "results.json").read_text())
    labels = set(info["rows"])
    assert labels == {"base (teacher)", "base, fine-tuned the same epochs"} | {f"MG, {i} init, {t} teacher" for i in ("random", "base")
                                           for t in ("no", "with")}
    assert all(0.0 <= acc <= 1.0 for acc in info["rows"].values())
    teacher_run = json.loads((tmp_path / "ft_random_teacher" / "run.json").read_text())
    assert teacher_run["recipe"].get("teacher") or "--teacher" in teacher_run["argv"]
    assert len(info["summary"]) == 4 and "vs the base fine-tuned 1 more epoch(s)" in info["summary"][0]
    # a folder with its own name that mgcompile did not write is refused, not deleted
    (tmp_path / "base" / "run.json").unlink()
    again = run(tmp_path)
    assert again.returncode != 0 and "not written by mgcompile" in again.stderr + again.stdout
    assert (tmp_path / "notes.txt").read_text() == "mine" and (tmp_path / "base").is_dir()
