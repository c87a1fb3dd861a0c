"""Recovering a trained network's accuracy after conversion: warm start and distillation, measured.

    python benchmarks/distill.py [--quick] [--limit-train 20000] [--epochs 3] [--finetune-epochs 2]

On fashion-mnist: train the base CIFAR ResNet 16-32-64-128 (blocks 2-3-3-3), convert the
trained run to MG g8/θ16 (`mgcompile convert RUN -g 8 -c 16`, cycles initialised at random
or from the base steps with `--init base`), then fine-tune each for the same epochs with
and without the base as teacher (`mgcompile train FOLDER --teacher RUN`). Every step is
its own `mgcompile` process. Every fine-tune adds epochs, so the control is the base itself
trained those extra epochs. Prints each variant's test accuracy against the base, the
control and the plain MG fine-tune (random init, no teacher), and writes ``results.json``.
``--quick``: narrow networks, 512 images, 1 epoch each.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from run_folders import clear  # benchmarks/ is on sys.path when a script runs


def mg(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "mgcompile", "--quiet", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"mgcompile {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def top1(run: Path) -> float:
    return json.loads((run / "results.json").read_text())["test_top1"]


CONTROL = "base, fine-tuned the same epochs"
INITS = ("random", "base")


def finetune_name(init: str, teacher: bool) -> str:
    return f"ft_{init}_{'teacher' if teacher else 'plain'}"


def summarise(rows: dict[str, float], finetune_epochs: int) -> list[str]:
    """Each MG variant against the base it came from and against the base given the same extra epochs."""
    base, control = rows["base (teacher)"], rows[CONTROL]
    plain = rows["MG, random init, no teacher"]
    return [f"{label}: {acc:.4f}; vs the base {100 * (acc - base):+.2f} points, vs the base fine-tuned "
            f"{finetune_epochs} more epoch(s) {100 * (acc - control):+.2f}, vs the plain MG fine-tune "
            f"{100 * (acc - plain):+.2f}" for label, acc in rows.items() if label.startswith("MG")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--limit-train", type=int, default=20000)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of the base network")
    ap.add_argument("--finetune-epochs", type=int, default=2)
    ap.add_argument("--out", default="bench-distill")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("base", "ft_base_control", *(f"mg_{init}" for init in INITS),
                 *(finetune_name(init, teacher) for init in INITS for teacher in (False, True))):
        clear(out / name)
    net = ["cifar_resnet", "--channels", "16,32,64,128", "--blocks", "2,3,3,3"]
    mgflags = ["-g", "8", "-c", "16"]
    data = ["--data", "fashion-mnist", "--limit-train", str(args.limit_train)]
    if args.quick:
        net = ["cifar_resnet", "--channels", "8,16", "--blocks", "1,1", "--input-size", "14,14"]
        mgflags, data = ["-g", "4", "-c", "8"], ["--data", "fashion-mnist", "--limit-train", "512"]
        args.epochs = args.finetune_epochs = 1
    start = time.time()
    mg("train", *net, *data, "--epochs", str(args.epochs), "--out", str(out / "base"))
    rows = {"base (teacher)": top1(out / "base")}
    print(f"base: test top-1 {rows['base (teacher)']:.4f}", flush=True)
    # the control: the base trained the same extra epochs (every fine-tune below also gets them)
    mg("train", str(out / "base"), *data, "--epochs", str(args.finetune_epochs), "--out", str(out / "ft_base_control"))
    rows[CONTROL] = top1(out / "ft_base_control")
    print(f"{CONTROL}: test top-1 {rows[CONTROL]:.4f}", flush=True)
    for init in INITS:
        mg("convert", str(out / "base"), *mgflags, "--init", init, "-o", str(out / f"mg_{init}"))
        for teacher in (False, True):
            label = f"MG, {init} init, {'with' if teacher else 'no'} teacher"
            run = out / finetune_name(init, teacher)
            extra = ["--teacher", str(out / "base")] if teacher else []
            mg("train", str(out / f"mg_{init}"), *data, "--epochs", str(args.finetune_epochs), *extra, "--out", str(run))
            rows[label] = top1(run)
            print(f"{label}: test top-1 {rows[label]:.4f}", flush=True)
    lines = summarise(rows, args.finetune_epochs)
    for line in lines:
        print(line)
    info = {"rows": rows, "summary": lines, "limit_train": args.limit_train, "epochs": args.epochs,
            "finetune_epochs": args.finetune_epochs, "wall_seconds": time.time() - start,
            "load_1min": os.getloadavg()[0]}
    (out / "results.json").write_text(json.dumps(info, indent=1))
    print(f"wall {info['wall_seconds'] / 60:.1f} min; wrote {out}/results.json")


if __name__ == "__main__":
    main()
