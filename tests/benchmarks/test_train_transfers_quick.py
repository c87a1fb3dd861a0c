"""`benchmarks/train_transfers.py` end to end on the narrow network, one round (the decision it documents)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "train_transfers.py"


def test_train_transfers_times_both_forms_and_prints_their_ratio():
    done = subprocess.run([sys.executable, str(SCRIPT), "--models", "narrow", "--rounds", "1", "--limit", "2"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    line = next(x for x in done.stdout.splitlines() if x.startswith("narrow:"))
    m = re.fullmatch(r"narrow: dense weight \(<= 2 groups\) ([\d.]+) img/s, gather ([\d.]+) img/s, ratio ([\d.]+)", line)
    assert m, line
    dense, gather, ratio = map(float, m.groups())
    assert dense > 0 and gather > 0 and abs(ratio - dense / gather) < 0.02 * ratio + 0.01
