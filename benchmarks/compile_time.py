"""How long the compiler itself takes (spec -> expanded IR -> counts, and -> PyTorch module), against a baseline revision.

    .venv/bin/python benchmarks/compile_time.py [--baseline a4f8e54] [--rounds 5]

For each model, ``audit`` work (model_spec + expand + count, IR only) and ``build`` work
(+ lowering to a GraphModule) are timed in a fresh process per measurement, alternating
this tree and the baseline (a ``git worktree`` of ``--baseline``, made and removed here)
over ``--rounds`` rounds; the table reports medians and the median of per-round ratios
(this tree / baseline). The machine's load average is printed with the result.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("mg_resnet34_g32c64", "mg_resnet50_g32c64", "mg_mobilenet_v2_g32c64", "resnet152")
CHILD = """
import json, sys, time
t0 = time.perf_counter()
import mgcompile, mgcompile.api, mgcompile.backends.torch_module  # imports (torch) are not the compiler's time
from mgcompile.passes import count
name = sys.argv[1]
mgcompile.model_spec("cifar_resnet")
t1 = time.perf_counter()
g = mgcompile.expand(mgcompile.model_spec(name)); count(g)
t2 = time.perf_counter()
mgcompile.build(g)
t3 = time.perf_counter()
print(json.dumps({"audit_s": t2 - t1, "build_s": t3 - t2}))
"""


def measure(tree: Path, name: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, "-c", CHILD, name], capture_output=True, text=True, env=env, cwd=tree,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", default="a4f8e54", help="git revision to compare with (default: mgcompile 0.1.0)")
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="mgcompile-baseline-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "-q", "--detach", str(base), args.baseline], cwd=ROOT, check=True)
        try:
            rows = []
            for name in MODELS:
                runs: dict[str, list[dict]] = {"this": [], "baseline": []}
                for r in range(args.rounds):
                    order = (("this", ROOT), ("baseline", base)) if r % 2 == 0 else (("baseline", base), ("this", ROOT))
                    for label, tree in order:
                        runs[label].append(measure(tree, name))
                row = {"model": name}
                for key in ("audit_s", "build_s"):
                    row[key] = statistics.median(x[key] for x in runs["this"])
                    row[f"baseline_{key}"] = statistics.median(x[key] for x in runs["baseline"])
                    row[f"ratio_{key}"] = statistics.median(a[key] / b[key] for a, b in zip(runs["this"], runs["baseline"]))
                rows.append(row)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT, check=False)
    load = os.getloadavg()
    print(f"compile time, this tree vs {args.baseline}, median of {args.rounds} alternating rounds, one process each; "
          f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'model':<26}{'audit s':>10}{'base':>8}{'ratio':>8}{'build s':>10}{'base':>8}{'ratio':>8}")
    for r in rows:
        print(f"{r['model']:<26}{r['audit_s']:>10.3f}{r['baseline_audit_s']:>8.3f}{r['ratio_audit_s']:>8.2f}"
              f"{r['build_s']:>10.3f}{r['baseline_build_s']:>8.3f}{r['ratio_build_s']:>8.2f}")


if __name__ == "__main__":
    main()
