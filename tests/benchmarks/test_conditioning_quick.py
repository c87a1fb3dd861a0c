"""`benchmarks/conditioning.py` end to end on one network: it prints the ratio its docstring promises."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "conditioning.py"


def test_conditioning_prints_both_inits_ratios_within_the_100x_bound():
    done = subprocess.run([sys.executable, str(SCRIPT), "--only", "resnet18"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "BN after P starts at 0.01" in done.stdout
    row = next(x for x in done.stdout.splitlines() if x.startswith("torchvision:resnet18"))
    random_init, base_init = map(float, row.split()[-2:])
    assert 0 < random_init <= 100 and 0 < base_init <= 100, row
