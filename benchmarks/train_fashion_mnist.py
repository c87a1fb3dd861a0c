"""Train a base and an MG CIFAR-style ResNet on fashion-mnist with the same recipe; print them side by side.

The paper's Table 1 shape (16-32-64-128, MG with s_g=8, θ=16), narrowed in depth
(one residual step per stage by default) and run on a fixed training subset so it
fits a 2-core CPU in minutes. Needs `apt-get install -y dataset-fashion-mnist`.

    .venv/bin/python benchmarks/train_fashion_mnist.py --epochs 2 --limit-train 10000
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import statistics
import time

import torch

import mgcompile
from mgcompile.train.run import train


def train_step_throughput(model: torch.nn.Module, batch: int, rounds: int = 5) -> list[float]:
    """Images/s of SGD training steps (channels_last), one number per round of 5 steps."""
    model = model.train().to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(batch, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    out = []
    for r in range(rounds + 1):
        start = time.perf_counter()
        for _ in range(5):
            opt.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        if r:  # round 0 warms up
            out.append(5 * batch / (time.perf_counter() - start))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--channels", default="16,32,64,128")
    ap.add_argument("--blocks", default="1,1,1,1")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--coarsest", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--lr", type=float, default=0.1)
    ap.add_argument("--limit-train", type=int, default=10000, help="training images (0 = all 54,000)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--out", help="keep the two run folders here (default: a temporary folder)")
    args = ap.parse_args()

    shape = {"channels": tuple(int(c) for c in args.channels.split(",")),
             "blocks": tuple(int(b) for b in args.blocks.split(","))}
    recipe = {"epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "schedule": "cosine",
              "limit_train": args.limit_train or None}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp)
        for label, mg in (("base", {}), (f"MG g{args.group_size}c{args.coarsest}",
                                         {"group_size": args.group_size, "coarsest": args.coarsest})):
            r = train("cifar_resnet", "fashion-mnist", recipe_overrides=recipe, overrides={**shape, **mg},
                      out=str(root / label.replace(" ", "_")), device=args.device, log=print)
            rows.append((label, r, mgcompile.load(root / label.replace(" ", "_"))))
        # Training throughput again, base and MG alternating in the same minute: the epoch
        # figures above are sensitive to whatever else runs on a shared machine.
        steps: dict[str, list[float]] = {label: [] for label, _, _ in rows}
        for _ in range(3):
            for label, _, model in rows:
                steps[label] += train_step_throughput(model, args.batch_size, rounds=2)
    print()
    print(f"fashion-mnist, channels {args.channels}, blocks {args.blocks}, {args.epochs} epoch(s) on "
          f"{args.limit_train or 'all'} training images, batch {args.batch_size}, cosine lr {args.lr}, device {rows[0][1]['device']}")
    print(f"{'model':<14}{'params':>10}{'test top-1':>12}{'test top-5':>12}{'epoch img/s':>13}{'step img/s':>12}")
    median = {label: statistics.median(v) for label, v in steps.items()}
    for label, r, _ in rows:
        print(f"{label:<14}{r['params']:>10,}{r['test_top1']:>12.4f}{r['test_top5']:>12.4f}"
              f"{r['images_per_s']:>13.0f}{median[label]:>12.0f}")
    (base_label, base, _), (mg_label, mg, _) = rows
    print(f"MG / base: params {mg['params'] / base['params']:.3f}, "
          f"training step throughput {median[mg_label] / median[base_label]:.2f}x (median of alternating rounds)")


if __name__ == "__main__":
    main()
