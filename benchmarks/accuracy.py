"""Accuracy vs parameters on real data: the paper's Table 1 claim, measured on fashion-mnist.

    python benchmarks/accuracy.py [--quick] [--epochs 3] [--out bench-accuracy]

Table 1's CIFAR-10 architecture shapes (CIFAR ResNets, basic steps, blocks 2-3-3-3) on the
full fashion-mnist (60,000 training / 10,000 test images, 28x28, 1 channel; Debian's
``dataset-fashion-mnist``), trained with mgcompile's default recipe (the same recipe and
epochs for every row), each run in its own `mgcompile train` process:

* base 16-32-64-128 and 32-64-128-256;
* MG g8/θ16 at 16-…-128, 32-…-256 and 64-…-512 (multiplicative cycle), and the additive
  cycle at 16-…-128;
* the headline pair (base 16-…-128 vs MG g8/θ16 16-…-128) over two seeds.

It prints a table and the paper's two claims side by side -- does MG reach the base of the
same widths within 1 point at <= 1/3 of its parameters, and does accuracy grow with width
at a fixed group size -- and writes ``results.json`` (with the machine, load and versions)
and ``accuracy.png`` (test top-1 vs parameters) to ``--out``. ``--quick`` is a smoke run
(narrow networks, 512 images, 1 epoch, < 1 min) that `make test` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from run_folders import clear  # benchmarks/ is on sys.path when a script runs

ROWS = [  # (label, channels, MG flags, seed)
    ("base 16-128", "16,32,64,128", [], 0),
    ("MG 16-128 g8c16", "16,32,64,128", ["-g", "8", "-c", "16"], 0),
    ("base 16-128 (seed 1)", "16,32,64,128", [], 1),
    ("MG 16-128 g8c16 (seed 1)", "16,32,64,128", ["-g", "8", "-c", "16"], 1),
    ("MG 16-128 g8c16 additive", "16,32,64,128", ["-g", "8", "-c", "16", "--cycle", "additive"], 0),
    ("base 32-256", "32,64,128,256", [], 0),
    ("MG 32-256 g8c16", "32,64,128,256", ["-g", "8", "-c", "16"], 0),
    ("MG 64-512 g8c16", "64,128,256,512", ["-g", "8", "-c", "16"], 0),
]
QUICK_ROWS = [
    ("base 8-16", "8,16", [], 0),
    ("MG 8-16 g4c8", "8,16", ["-g", "4", "-c", "8"], 0),
]


def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "cpus": os.cpu_count(), "load_1min": os.getloadavg()[0],
            "python": platform.python_version(), "torch": torch.__version__, "threads": torch.get_num_threads()}


def finished(run_dir: Path, epochs: int) -> dict | None:
    """A row's earlier run, if it finished with the same number of epochs (``--resume``)."""
    try:
        results = json.loads((run_dir / "results.json").read_text())
    except (OSError, ValueError):
        return None
    return results if results.get("epochs") == epochs else None


def run_one(label: str, channels: str, flags: list[str], seed: int, args: argparse.Namespace, out: Path) -> dict:
    run_dir = out / label.replace(" ", "_").replace("(", "").replace(")", "")
    blocks = ",".join(["2", "3", "3", "3"][:len(channels.split(","))]) if not args.quick else "1,1"
    row = {"label": label, "channels": channels, "blocks": blocks, "mg": " ".join(flags) or "-", "seed": seed}
    earlier = finished(run_dir, args.epochs) if args.resume else None
    if earlier is not None:
        epoch_s = sum(float(line.split(",")[-1]) for line in (run_dir / "metrics.csv").read_text().splitlines()[1:])
        return {**measured(row, earlier, epoch_s), "reused": True}
    clear(run_dir)
    recipe = out / "recipe.yaml"
    cmd = [sys.executable, "-m", "mgcompile", "--quiet", "train", "cifar_resnet", "--channels", channels,
           "--blocks", blocks, *flags, "--seed", str(seed), "--data", "fashion-mnist", "--recipe", str(recipe),
           "--epochs", str(args.epochs), "--out", str(run_dir)]
    if args.quick:
        cmd += ["--limit-train", "512", "--input-size", "14,14"]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{label}: mgcompile train failed:\n{done.stderr[-2000:]}")
    results = json.loads((run_dir / "results.json").read_text())
    return measured(row, results, time.perf_counter() - start)


def measured(row: dict, results: dict, seconds: float) -> dict:
    """A table row: what it is, plus what its run's results.json says."""
    keys = ("params", "test_top1", "test_top5", "epochs", "images_per_s", "recipe")
    return {**row, **{k: results[k] for k in keys}, "seconds": seconds}


def claims(rows: list[dict]) -> list[str]:
    """The paper's two claims, checked against the measured rows."""
    by = {r["label"]: r for r in rows}
    out = []
    for base_label, mg_label in (("base 16-128", "MG 16-128 g8c16"), ("base 32-256", "MG 32-256 g8c16"),
                                 ("base 8-16", "MG 8-16 g4c8")):
        if base_label not in by or mg_label not in by:
            continue
        seeds = [(by[base_label], by[mg_label])]
        if f"{base_label} (seed 1)" in by and f"{mg_label} (seed 1)" in by:  # a partial run has only some rows
            seeds.append((by[f"{base_label} (seed 1)"], by[f"{mg_label} (seed 1)"]))
        gap = sum(b["test_top1"] - m["test_top1"] for b, m in seeds) / len(seeds)
        ratio = seeds[0][1]["params"] / seeds[0][0]["params"]
        verdict = "yes" if gap <= 0.01 and ratio <= 1 / 3 else "no"
        out.append(f"{mg_label} vs {base_label}: params ratio {ratio:.3f}, accuracy gap {100 * gap:+.2f} points "
                   f"(mean of {len(seeds)} seed(s)); within 1 point at <= 1/3 of the parameters: {verdict}")
    widths = [by[k]["test_top1"] for k in ("MG 16-128 g8c16", "MG 32-256 g8c16", "MG 64-512 g8c16") if k in by]
    if len(widths) == 3:
        grows = widths[0] < widths[1] < widths[2]
        out.append("MG g8c16 accuracy by width 16-128 / 32-256 / 64-512: "
                   + " / ".join(f"{w:.4f}" for w in widths) + f"; grows with width: {'yes' if grows else 'no'}")
    return out


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.ticker
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, marker in (("base", "o"), ("MG", "s")):
        pts = [r for r in rows if r["label"].startswith(kind)]
        ax.scatter([r["params"] for r in pts], [r["test_top1"] for r in pts], marker=marker, label=kind)
        for r in pts:
            ax.annotate(r["label"].split(" ", 1)[1], (r["params"], r["test_top1"]), fontsize=6)
    ax.set_xscale("log")
    ax.xaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))  # 1-2-5 steps, readable labels
    ax.xaxis.set_major_formatter(matplotlib.ticker.EngFormatter(sep=""))
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.set_xlabel("parameters")
    ax.set_ylabel("fashion-mnist test top-1")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120, metadata={"Software": "mgcompile benchmarks/accuracy.py"})


def write(out: Path, rows: list[dict], args: argparse.Namespace, started: float, load_before: float) -> dict:
    info = {"machine": machine(), "load_1min_at_start": load_before, "wall_seconds": time.time() - started,
            "epochs": args.epochs,
            "data": "fashion-mnist (60,000 train / 10,000 test, 28x28)" if not args.quick else "fashion-mnist quick",
            "rows": rows, "claims": claims(rows)}
    tmp = out / "results.json.tmp"
    tmp.write_text(json.dumps(info, indent=1))
    tmp.replace(out / "results.json")
    plot(rows, out / "accuracy.png")
    return info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: narrow networks, 512 images, 1 epoch")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--out", default="bench-accuracy")
    ap.add_argument("--resume", action="store_true",
                    help="keep rows whose run folder under --out already finished with the same epochs")
    args = ap.parse_args()
    if args.quick:
        args.epochs = 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "recipe.yaml").write_text("val_fraction: 0.0\n")  # the default recipe on all 60,000 training images
    started, load_before = time.time(), os.getloadavg()[0]
    rows = []
    print(f"{'row':<28} {'params':>10} {'test top-1':>10} {'top-5':>7} {'img/s':>7} {'min':>6}", flush=True)
    for label, channels, flags, seed in (QUICK_ROWS if args.quick else ROWS):
        r = run_one(label, channels, flags, seed, args, out)
        rows.append(r)
        print(f"{label:<28} {r['params']:>10,} {r['test_top1']:>10.4f} {r['test_top5']:>7.4f} "
              f"{r['images_per_s']:>7.0f} {r['seconds'] / 60:>6.1f}{'  (reused)' if r.get('reused') else ''}",
              flush=True)
        info = write(out, rows, args, started, load_before)  # after every row: an interrupted run keeps its rows
    for line in info["claims"]:
        print(line)
    wall = info["wall_seconds"]
    print(f"wall {wall / 60:.1f} min, load {load_before:.2f} at start, {info['machine']['load_1min']:.2f} at the end; "
          f"wrote {out}/results.json and {out}/accuracy.png")


if __name__ == "__main__":
    main()
